"""Advancing a run: lease it, replay its history, execute what is new, record the ending.

This is where a job ("advance run R") becomes work. The replay engine (in the SDK) does
the stepping; this module gives it PostgreSQL-backed checkpoints, keeps the lease alive
while steps execute, and turns the engine's outcome into the run's new state: finished,
failed (with ``ferryman/function.failed``), retrying later, or sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nats.js import JetStreamContext
from psycopg_pool import AsyncConnectionPool

from ferryman import Context, Event, Function
from ferryman._engine import Execution, Outcome
from ferryman._runtime import StepRecord, set_sender
from ferryman.errors import describe
from ferryman_jetstream import subjects as S
from ferryman_worker.admission import Gate
from ferryman_worker.admission.admitting import GONE, HELD
from ferryman_worker.admission.store import FINISH_DEADLINE, START_DEADLINE
from ferryman_worker.common import ids, jsonutil, metrics, tracing
from ferryman_worker.common.logs import seconds
from ferryman_worker.common.outages import CHECKPOINTS_DOWN, store_system
from ferryman_worker.execution.observing import ObservedSteps
from ferryman_worker.storage.batching import CompletedSteps, Releases
from ferryman_worker.storage.checkpoints import RunCheckpoints
from ferryman_worker.storage.events import EventBus, internal_event
from ferryman_worker.storage.runs import Lease, LeaseLost, RunCancelled, RunStore, StoreUnavailable
from ferryman_worker.transport import timers

log = logging.getLogger("ferryman.worker")

FINISHED_EVENT = "ferryman/function.finished"
DEADLINES = (START_DEADLINE, FINISH_DEADLINE)
FAILED_EVENT = "ferryman/function.failed"


@dataclass
class Advanced:
    """What happened to a job: ``done`` (ack it) or ``retry_in`` seconds (nak with delay)."""

    done: bool
    retry_in: float = 0.0


class Advancer:
    """Advances runs of the functions this worker hosts."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        js: JetStreamContext,
        bus: EventBus,
        functions: dict[str, Function],
        owner: str,
        lease_seconds: float,
    ) -> None:
        self.pool = pool
        self.js = js
        self.bus = bus
        self.runs = RunStore(pool)
        self.functions = functions
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.batcher = CompletedSteps(pool)
        self.releases = Releases(pool)
        # Runs this worker is advancing now. A second job for one of them waits: the lease
        # query lets this worker reclaim its own lease (left by a pass that died with the
        # database), so it must never run while a pass of ours is still going.
        self.active: set[str] = set()
        self.gate: Gate | None = None  # the admission stage, for functions with flow control

    async def advance(
        self,
        run_id: str,
        keepalive: Callable[[], Awaitable[Any]] | None = None,
        fresh: tuple[Function, Event] | None = None,
        timer_id: str | None = None,
        function_id: str | None = None,
    ) -> Advanced:
        """One pass over ``run_id``. ``fresh``: the run was just created, leased to us with
        token 1 and with no history, so the lease and the loads are skipped.
        ``function_id``: the run's function, when the job says; runs of functions with
        flow control pass the admission stage first and wake the next runs after."""
        if timer_id in DEADLINES and self.gate is not None and function_id is not None:
            # A timeouts deadline cancels the run even while a pass of it is going here.
            await self.gate.admit(function_id, run_id, timer_id)
            return Advanced(done=True)
        if run_id in self.active:
            return Advanced(done=False, retry_in=0.2)
        self.active.add(run_id)
        try:
            if self.gate is None or function_id is None or not self.gate.gates(function_id):
                return await self._advance(run_id, keepalive, fresh, timer_id)
            return await self._admitted(function_id, run_id, keepalive, timer_id)
        finally:
            self.active.discard(run_id)

    async def _admitted(
        self,
        function_id: str,
        run_id: str,
        keepalive: Callable[[], Awaitable[Any]] | None,
        timer_id: str | None,
    ) -> Advanced:
        assert self.gate is not None
        admitted = await self.gate.admit(function_id, run_id, timer_id)
        if admitted.verdict in (HELD, GONE):
            return Advanced(done=True)
        try:
            return await self._advance(run_id, keepalive, None, None)
        finally:
            await self.gate.wake(function_id, run_id)

    async def _advance(
        self,
        run_id: str,
        keepalive: Callable[[], Awaitable[Any]] | None,
        fresh: tuple[Function, Event] | None,
        timer_id: str | None,
    ) -> Advanced:
        if fresh is not None:
            new_fn, event = fresh
            delay = max(0.0, time.time() - event.ts / 1000)
            metrics.RUN_START_DELAY.labels(new_fn.id).observe(delay)
            log.info(
                "run %s started by %s (%s after the event)",
                run_id,
                event.name,
                seconds(delay),
                extra={"run_id": run_id, "function_id": new_fn.id},
            )
            leased = Lease(run_id, new_fn.id, 1, 0, [event.id or ""], "RUNNING")
            return await self._pass(leased, new_fn, [], [event], keepalive)
        loaded = await self.runs.lease_and_load(run_id, self.owner, self.lease_seconds, timer_id)
        if loaded is None:
            state = await self.runs.state(run_id)
            if state is None or state[0] in ("COMPLETED", "FAILED", "CANCELLED"):
                return Advanced(done=True)
            return Advanced(done=False, retry_in=max(0.05, min(state[1], self.lease_seconds)))
        lease, history, events = loaded
        fn = self.functions.get(lease.function_id)
        if fn is None:
            await self.runs.release(run_id, lease.token, "QUEUED")
            log.warning(
                "run %s belongs to %s, which this worker does not host", run_id, lease.function_id
            )
            return Advanced(done=False, retry_in=5.0)
        return await self._pass(lease, fn, history, events, keepalive)

    async def _pass(
        self,
        lease: Lease,
        fn: Function,
        history: list[StepRecord],
        events: list[Event],
        keepalive: Callable[[], Awaitable[Any]] | None,
    ) -> Advanced:
        run_id = lease.run_id
        checkpoints = RunCheckpoints(
            self.pool,
            run_id,
            fn.id,
            lease.token,
            self.bus,
            batcher=self.batcher,
            releases=self.releases,
        )
        # Tracing off: None, and nothing below pays for it.
        trace = None if tracing.tracer is None else await tracing.for_run(self.pool, run_id, fn.id)
        execution = Execution(
            fn.config,
            fn.handler,
            ObservedSteps(checkpoints, trace),
            run_id,
            events,
            history,
            attempt=lease.attempt,
            around_step=None if trace is None else trace.step,
        )
        # Most passes end long before a renewal is due: start renewing only if this one
        # is still going a third of the way into its lease.
        renewer: asyncio.Task[None] | None = None
        done = asyncio.Event()

        def start_renewing() -> None:
            nonlocal renewer
            renewer = asyncio.create_task(self._keep_lease(run_id, lease.token, keepalive, done))

        renew_handle = asyncio.get_running_loop().call_later(self.lease_seconds / 3, start_renewing)
        started = time.perf_counter()
        token = set_sender(self.bus)
        ambient = None if trace is None else trace.attach()
        metrics.ACTIVE_RUNS.inc()
        try:
            outcome = await self._execute(fn, execution)
        except LeaseLost:
            log.warning("run %s: lease lost to another worker; dropping this pass", run_id)
            return Advanced(done=True)
        except RunCancelled:
            log.info("run %s was cancelled; stopped after the step in progress", run_id)
            return Advanced(done=True)
        except StoreUnavailable as exc:
            metrics.STORE_ERRORS.labels(store_system(exc) or "postgresql").inc()
            CHECKPOINTS_DOWN.failed(exc)  # one line for an outage, not one per run
            return Advanced(done=False, retry_in=1.0)
        finally:
            set_sender(None)
            del token
            if trace is not None and ambient is not None:
                trace.close(ambient)
            metrics.ACTIVE_RUNS.dec()
            renew_handle.cancel()
            done.set()
            if renewer is not None:
                # A cancel that lands inside the database driver can be swallowed there;
                # the event ends the loop anyway, and the pass never waits for it long:
                # a pass stuck here kept renewing its lease for ever (the chaos test).
                renewer.cancel()
                await asyncio.wait({renewer}, timeout=5)
        CHECKPOINTS_DOWN.ok()
        metrics.RUN_PASSES.labels(fn.id).inc()
        metrics.STEPS_EXECUTED.labels(fn.id).inc(execution.new_steps)
        metrics.RUN_PASS_SECONDS.labels(fn.id).observe(time.perf_counter() - started)
        # What the run now waits on, from its whole history: a pass that replays a run
        # whose sleep or wait is still pending must leave it SLEEPING or WAITING.
        pending = {r.status for r in execution.memo.values()}
        checkpoints.sleeping = checkpoints.sleeping or "SLEEPING" in pending
        checkpoints.waiting = checkpoints.waiting or "WAITING" in pending
        await self._record(
            fn, run_id, lease.token, lease.attempt, outcome, checkpoints, events, trace
        )
        return Advanced(done=True)

    async def _execute(self, fn: Function, execution: Execution) -> Outcome:
        try:
            for event in execution.events:
                fn.validate_event(event)
        except Exception as exc:
            return Outcome("FAILED", error=describe(exc))
        return await execution.execute(Context(execution))

    async def _keep_lease(
        self,
        run_id: str,
        token: int,
        keepalive: Callable[[], Awaitable[Any]] | None,
        done: asyncio.Event,
    ) -> None:
        while not done.is_set():
            with contextlib.suppress(Exception):
                await self.runs.renew(run_id, token, self.lease_seconds)
                if keepalive is not None:
                    await keepalive()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), self.lease_seconds / 3)

    async def _record(
        self,
        fn: Function,
        run_id: str,
        token: int,
        attempt: int,
        outcome: Outcome,
        checkpoints: RunCheckpoints,
        events: list[Any],
        trace: tracing.RunTrace | None = None,
    ) -> None:
        if outcome.status in ("COMPLETED", "FAILED"):
            await self._end(fn, run_id, token, outcome, events, trace)
        elif outcome.status == "RETRY" and outcome.retry_at is not None:
            metrics.RUN_RETRIES.labels(fn.id).inc()
            await checkpoints.run_timer(f"run-retry-{attempt + 1}", outcome.retry_at)
            await checkpoints.release("RUNNING", attempt=attempt + 1, error=outcome.error)
        else:
            status = (
                "SLEEPING"
                if checkpoints.sleeping
                else "WAITING"
                if checkpoints.waiting
                else "RUNNING"
            )
            await checkpoints.release(status)
        await timers.arm(self.js, checkpoints.timers)
        for function_id, child_run in checkpoints.jobs:
            await self.js.publish(
                S.work_subject(function_id), jsonutil.dumpb({"run_id": child_run})
            )

    async def _end(
        self,
        fn: Function,
        run_id: str,
        token: int,
        outcome: Outcome,
        events: list[Any],
        trace: tracing.RunTrace | None = None,
    ) -> None:
        """Record the ending and its internal events together, then publish the events."""
        trigger = events[0].to_wire() if events else None
        base = {"function_id": fn.id, "run_id": run_id, "event": trigger}
        if outcome.status == "COMPLETED":
            extra: dict[str, Any] = {"output": outcome.output}
            names = [FINISHED_EVENT]
        else:
            extra = {"error": outcome.error}
            names = [FINISHED_EVENT] if fn.is_failure_handler else [FAILED_EVENT, FINISHED_EVENT]
        emitted = [internal_event(n, {**base, **extra}, f"{n}:{run_id}") for n in names]
        received = await self.runs.finish(
            run_id, token, outcome.status, outcome.output_json, outcome.error, emitted
        )
        if received is None:
            return
        if trace is not None:
            trace.finish(outcome.status, outcome.error)
        metrics.RUNS_FINISHED.labels(fn.id, outcome.status).inc()
        took = max(0.0, time.time() - ids.time_of(run_id))
        metrics.RUN_DURATION.labels(fn.id, outcome.status).observe(took)
        fields = {"run_id": run_id, "function_id": fn.id}
        if outcome.status == "COMPLETED":
            log.info("run %s completed in %s", run_id, seconds(took), extra=fields)
        else:
            error = outcome.error or {}
            log.warning(
                "run %s failed after %s: %s: %s",
                run_id,
                seconds(took),
                error.get("name", "Error"),
                error.get("message", ""),
                extra=fields,
            )
        try:
            # Traced: runs these events start (on-failure handlers) are children of this run.
            await self.bus.publish(emitted, received, None if trace is None else trace.traceparent)
        except Exception as exc:
            log.warning("could not publish the end of run %s: %s", run_id, exc)
