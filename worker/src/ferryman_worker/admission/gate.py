"""The admission stage as the worker uses it: arrivals, admissions, wake-ups, deadlines
and a sweep that keeps queues moving whatever happens to individual workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nats.js import JetStreamContext
from psycopg_pool import AsyncConnectionPool

from ferryman import Event, Function
from ferryman_jetstream import subjects as S
from ferryman_worker.admission import arriving, concurrency, store
from ferryman_worker.admission import timeouts as deadlines
from ferryman_worker.admission.admitting import GONE, Admitted, admit
from ferryman_worker.admission.arriving import Arrival
from ferryman_worker.admission.policy import FlowPolicy, policy_of
from ferryman_worker.common import jsonutil, metrics
from ferryman_worker.storage.cancelling import cancel_runs
from ferryman_worker.storage.events import EventBus
from ferryman_worker.storage.runs import RunStore
from ferryman_worker.transport import timers

log = logging.getLogger("ferryman.admission")

SWEEP_SECONDS = 1.0


class Gate:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        js: JetStreamContext,
        bus: EventBus,
        functions: dict[str, Function],
        owner: str,
        lease_seconds: float,
    ) -> None:
        self.pool, self.js, self.bus = pool, js, bus
        self.owner, self.lease_seconds = owner, lease_seconds
        self.runs = RunStore(pool)
        policies = {fid: policy_of(fn) for fid, fn in functions.items()}
        self.policies: dict[str, FlowPolicy] = {f: p for f, p in policies.items() if p.gated}

    def gates(self, function_id: str) -> bool:
        return function_id in self.policies

    async def arrive(self, fn: Function, event: Event, traceparent: str | None = None) -> Arrival:
        """Decide what ``event`` does for ``fn``; the caller admits ``run_id`` when
        ``start_now``. ``traceparent``: the event's trace, kept by the run it creates."""
        policy = self.policies[fn.id]
        async with self.pool.connection() as conn, conn.transaction():
            arrival = await arriving.arrive(conn, self.runs, policy, event, traceparent)
        if arrival.skipped:
            metrics.FLOW_SKIPPED.labels(fn.id, arrival.skipped).inc()
        if arrival.created:
            metrics.RUNS_STARTED.labels(fn.id).inc()
        if arrival.delayed:
            metrics.FLOW_HELD.labels(fn.id, arrival.delayed).inc()
        await timers.arm(self.js, arrival.timers)
        if arrival.cancel:
            await cancel_runs(
                self.pool, self.bus, reason=f"singleton: replaced by run {arrival.run_id}",
                run_ids=arrival.cancel,
            )  # fmt: skip
        return arrival

    async def admit(self, function_id: str, run_id: str, timer_id: str | None) -> Admitted:
        """Before leasing ``run_id``: GO means it is leased to this worker now."""
        policy = self.policies[function_id]
        if timer_id in (store.START_DEADLINE, store.FINISH_DEADLINE):
            await self._deadline(policy, run_id, timer_id)
            return Admitted(GONE)
        async with self.pool.connection() as conn, conn.transaction():
            # The run's row first, then its timer: arrivals lock in that order too.
            admitted = await admit(conn, policy, run_id, self.owner, self.lease_seconds)
            if timer_id:
                await conn.execute(
                    "UPDATE timers SET fired_at = now() WHERE run_id = %s AND timer_id = %s "
                    "AND fired_at IS NULL",
                    (run_id, timer_id),
                )
        if admitted.rule == "concurrency":
            metrics.FLOW_HELD.labels(function_id, "concurrency").inc()
        if admitted.waited is not None:
            metrics.FLOW_WAIT_SECONDS.labels(function_id).observe(admitted.waited)
        await timers.arm(self.js, admitted.timers)
        return admitted

    async def _deadline(self, policy: FlowPolicy, run_id: str, timer_id: str) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE timers SET fired_at = now() WHERE run_id = %s AND timer_id = %s",
                (run_id, timer_id),
            )
        cancelled = await cancel_runs(
            self.pool, self.bus, reason=deadlines.reason(policy, timer_id), run_ids=[run_id],
            unstarted_only=timer_id == store.START_DEADLINE,
        )  # fmt: skip
        if cancelled:
            rule = "timeouts.start" if timer_id == store.START_DEADLINE else "timeouts.finish"
            metrics.FLOW_SKIPPED.labels(policy.id, rule).inc()
            await self.wake(policy.id, run_id)

    async def wake(self, function_id: str, run_id: str) -> int:
        """A run of ``function_id`` let go of its slot: send the next runs of its keys a job."""
        policy = self.policies.get(function_id)
        if policy is None or not policy.fn.config.concurrency:
            return 0
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT flow_keys FROM runs WHERE id = %s", (run_id,))
            row = await cur.fetchone()
            if row is None or not row[0]:
                return 0
            heads = await concurrency.heads(conn, policy, list(row[0]))
        return await self._send(heads)

    async def _send(self, heads: list[tuple[str, str]]) -> int:
        for run_id, function_id in heads:
            await self.js.publish(S.work_subject(function_id), jsonutil.dumpb({"run_id": run_id}))
        return len(heads)

    async def sweep(self) -> int:
        """Wake the heads of every key that has runs free to start but untouched for a
        second: the backstop for wake-ups lost with a worker (kill -9, lease expiry)."""
        keyed = [p.id for p in self.policies.values() if p.fn.config.concurrency]
        if not keyed:
            return 0
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT DISTINCT ON (flow_keys) function_id, flow_keys FROM runs "
                "WHERE function_id = ANY(%s) AND status = 'QUEUED' AND queued_at IS NOT NULL "
                "AND flow_keys IS NOT NULL AND (not_before IS NULL OR not_before <= now()) "
                "AND updated_at < now() - interval '1 second' ORDER BY flow_keys",
                (keyed,),
            )
            groups = await cur.fetchall()
            heads: list[tuple[str, str]] = []
            for function_id, keys in groups:
                heads += await concurrency.heads(conn, self.policies[function_id], list(keys))
        return await self._send(heads)

    async def keep_admitting(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stopping.wait(), SWEEP_SECONDS)
            if stopping.is_set():
                return
            try:
                await self.sweep()
            except Exception as exc:
                log.warning("admission sweep failed: %s", exc)
