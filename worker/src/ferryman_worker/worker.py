"""The worker: hosts a module's functions and advances their runs.

It connects to PostgreSQL and NATS, registers its functions, makes sure their JetStream
consumers and cron schedules exist (unless the operator owns them), and runs one pull
loop per consumer:

- ``trigger-<fn>``: an event becomes a run (once per function and key) that this worker
  advances at once, without another trip through NATS;
- ``work-<fn>``: jobs that advance existing runs (the repair sweep and re-queues);
- ``timers-<fn>``: fired sleeps and retries, and cron ticks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from datetime import UTC, datetime
from typing import Any

from nats.aio.msg import Msg
from psycopg_pool import AsyncConnectionPool

from ferryman import CronTrigger, Event, Ferryman, Function
from ferryman_jetstream import (
    CronSchedule,
    FunctionTopology,
    ensure_streams,
    reconcile_function,
)
from ferryman_jetstream import subjects as S
from ferryman_worker.admission import Gate
from ferryman_worker.common import jsonutil, metrics, tracing
from ferryman_worker.common.ids import new_id
from ferryman_worker.common.outages import CHECKPOINTS_DOWN, report_failure
from ferryman_worker.common.settings import Settings
from ferryman_worker.common.tracing import TRACEPARENT
from ferryman_worker.execution.executing import Advancer
from ferryman_worker.execution.matching import Matcher
from ferryman_worker.execution.repairing import repair_loop
from ferryman_worker.storage.events import WAITS_ANNOUNCED, EventBus
from ferryman_worker.storage.migrating import migrate
from ferryman_worker.storage.retaining import retention_loop
from ferryman_worker.storage.runs import NewRun, RunStore
from ferryman_worker.storage.triggering import cancel_waits, run_key
from ferryman_worker.transport import cron, natsconn
from ferryman_worker.transport.consuming import pull_loop, settle
from ferryman_worker.transport.slots import Slots
from ferryman_worker.webhooks.declaring import declare_webhooks

log = logging.getLogger("ferryman.worker")


def topology_of(
    fn: Function, ack_wait: float, declared_at: datetime | None = None
) -> FunctionTopology:
    crons = tuple(CronSchedule(t.cron, t.timezone) for t in fn.config.cron_triggers)
    # Concurrency limits are the admission stage's (PostgreSQL), not max_ack_pending's:
    # that was set on all three consumers and so allowed three times the limit.
    return FunctionTopology(
        function_id=fn.id,
        events=tuple(t.event for t in fn.config.event_triggers),
        crons=crons,
        ack_wait_seconds=ack_wait,
        declared_at=declared_at,
    )


class Worker:
    def __init__(self, apps: list[Ferryman], settings: Settings) -> None:
        settings.require("database_url", "nats_url")
        self.settings = settings
        self.functions: dict[str, Function] = {}
        self.apps = apps
        for app in apps:
            self.functions.update(app.functions)
        if not self.functions:
            raise ValueError("no functions to host: the module defines no @fm.function")
        for function_id in self.functions:
            metrics.hosting(function_id)
        self.owner = settings.worker_id or f"{socket.gethostname()}:{os.getpid()}"
        tracing.setup("ferryman-worker")  # only when OTEL_EXPORTER_OTLP_ENDPOINT is set
        self.stopping = asyncio.Event()
        # New runs and resumed runs (timers, work jobs) take slots from separate pools, so
        # a flood of new events never makes sleeping runs wake up late.
        # Each function sees both pools through its share (slots.py): one cannot take them all.
        self.slots = Slots(settings.concurrency, settings.function_slot_share)
        self.resume_slots = Slots(settings.concurrency, settings.function_slot_share)
        self.matcher_slots = Slots(256)
        self.tasks: set[asyncio.Task[Any]] = set()
        self.loops: list[asyncio.Task[Any]] = []

    async def start(self, *, run_migrations: bool = True) -> None:
        s = self.settings
        if run_migrations:
            await migrate(s.database_url)
        self.pool = AsyncConnectionPool(
            s.database_url,
            min_size=4,
            max_size=max(8, min(50, s.concurrency)),
            kwargs={"autocommit": True},
            open=False,
        )
        await self.pool.open(wait=True, timeout=30)
        self.nc = await natsconn.connect(s.nats_url, f"ferryman-worker {self.owner}", log)
        self.js = self.nc.jetstream(timeout=10)
        self.bus = EventBus(self.pool, self.js, self.nc)
        self.runs = RunStore(self.pool)
        self.advancer = Advancer(
            self.pool, self.js, self.bus, self.functions, self.owner, s.lease_seconds
        )
        self.gate = Gate(self.pool, self.js, self.bus, self.functions, self.owner, s.lease_seconds)
        self.advancer.gate = self.gate
        for function_id in self.functions:
            if self.gate.gates(function_id):  # at 0 from the start, as metrics.hosting does
                metrics.FLOW_WAIT_SECONDS.labels(function_id)
        self.arrivals = asyncio.Semaphore(8)  # admission transactions at once, per worker
        declared = await self._register()
        if s.manage_topology:
            await ensure_streams(self.js)
            for fn in self.functions.values():
                topology = topology_of(fn, s.lease_seconds, declared[fn.id])
                await reconcile_function(self.js, topology)
            await declare_webhooks(self.js, self.apps)
        await self._catch_up_cron()
        for fn in self.functions.values():
            if fn.config.event_triggers:
                self._loop(
                    S.EVENTS_STREAM,
                    S.trigger_consumer(fn.id),
                    lambda msgs, fn=fn: self._on_events(fn, msgs),
                    self.slots.of(fn.id),
                    yield_to=self.resume_slots,
                )
            self._loop(
                S.WORK_STREAM,
                S.work_consumer(fn.id),
                lambda msgs, fn=fn: self._on_work(msgs, fn.id),
                self.resume_slots.of(fn.id),
            )
            self._loop(
                S.TIMERS_STREAM,
                S.timers_consumer(fn.id),
                lambda msgs, fn=fn: self._on_timers(fn, msgs),
                self.resume_slots.of(fn.id),
            )
        self.matcher = Matcher(self.pool, self.js, self.bus)
        static = [
            (c.event, c.match.split(".", 1)[1] if c.match else "")
            for fn in self.functions.values()
            for c in fn.config.cancel_on
        ]
        self.matcher.learn_static(static)
        await self.matcher.refresh()
        await self.nc.subscribe(WAITS_ANNOUNCED, cb=self._learn_waits)
        await self.bus.announce_waits(static)
        self.loops.append(asyncio.create_task(self.matcher.keep_fresh(self.stopping)))
        self.loops.append(
            asyncio.create_task(
                pull_loop(
                    self.js,
                    S.EVENTS_STREAM,
                    S.MATCHER_CONSUMER,
                    self.matcher_slots,
                    self._on_match,
                    self.stopping,
                )
            )
        )
        if self.gate.policies:
            self.loops.append(asyncio.create_task(self.gate.keep_admitting(self.stopping)))
        self.loops.append(
            asyncio.create_task(
                repair_loop(
                    self.pool,
                    self.js,
                    s.repair_interval_seconds,
                    self.stopping,
                    self.matcher,
                    list(self.functions.values()),
                )
            )
        )
        self.loops.append(
            asyncio.create_task(
                retention_loop(
                    self.pool, s.retention_days, s.retention_interval_seconds, self.stopping
                )
            )
        )
        log.info(
            "worker %s hosting %d functions: %s",
            self.owner,
            len(self.functions),
            ", ".join(sorted(self.functions)),
        )

    def _loop(
        self,
        stream: str,
        consumer: str,
        handler: Any,
        slots: Slots | None = None,
        yield_to: Slots | None = None,
    ) -> None:
        self.loops.append(
            asyncio.create_task(
                pull_loop(
                    self.js, stream, consumer, slots or self.slots, handler, self.stopping, yield_to
                )
            )
        )

    async def stop(self, grace: float = 30.0) -> None:
        """Stop pulling, let runs in progress finish (up to ``grace``), then disconnect."""
        self.stopping.set()
        await self.slots.give(0)
        await self.resume_slots.give(0)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(self.slots.drained(), self.resume_slots.drained()), grace
            )
        for task in self.loops:
            task.cancel()
        await asyncio.gather(*self.loops, return_exceptions=True)
        # close, not drain: nats-py's drain waits out its timeout on pull subscriptions
        # whose fetches ended; every message we took is acked or nak'ed by now.
        with contextlib.suppress(Exception):
            await self.nc.close()
        await self.pool.close()
        await asyncio.to_thread(tracing.flush)

    async def _register(self) -> dict[str, datetime]:
        """Record the hosted functions; return when each was first declared."""
        declared: dict[str, datetime] = {}
        async with self.pool.connection() as conn:
            for fn in self.functions.values():
                cur = await conn.execute(
                    "INSERT INTO functions (id, app_id, name, config) VALUES (%s,%s,%s,%s::jsonb) "
                    "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, "
                    "config = EXCLUDED.config, updated_at = now() RETURNING declared_at",
                    (fn.id, fn.app_id, fn.name, fn.config.model_dump_json(by_alias=True)),
                )
                row = await cur.fetchone()
                assert row is not None
                declared[fn.id] = row[0]
        return declared

    # -- handlers -----------------------------------------------------------------------

    def _spawn(
        self,
        msg: Msg,
        run_id: str,
        fresh: tuple[Function, Event] | None = None,
        slots: Slots | None = None,
        timer_id: str | None = None,
        function_id: str | None = None,
    ) -> None:
        task = asyncio.create_task(
            self._advance(msg, run_id, fresh, slots or self.slots, timer_id, function_id)
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _advance(
        self,
        msg: Msg,
        run_id: str,
        fresh: tuple[Function, Event] | None,
        slots: Slots,
        timer_id: str | None = None,
        function_id: str | None = None,
    ) -> None:
        try:
            result = await self.advancer.advance(
                run_id,
                keepalive=msg.in_progress,
                fresh=fresh,
                timer_id=timer_id,
                function_id=function_id,
            )
            await settle(msg, result.done, result.retry_in)
            CHECKPOINTS_DOWN.ok()
        except Exception as exc:
            report_failure(exc, "advancing run %s failed; it will be redelivered", run_id)
            await settle(msg, False, 1.0)
        finally:
            await slots.give()

    async def _on_events(self, fn: Function, msgs: list[Msg]) -> None:
        items: list[tuple[Msg, Event]] = []
        for msg in msgs:
            try:
                items.append((msg, Event.model_validate(jsonutil.loads(msg.data))))
            except Exception:
                log.warning("dropping unreadable event on %s", msg.subject)
                await settle(msg, True)
                await self.slots.of(fn.id).give()
        await self._trigger(fn, items, self.slots.of(fn.id))

    async def _trigger(self, fn: Function, items: list[tuple[Msg, Event]], slots: Slots) -> None:
        """Start ``fn``'s runs for these events (once per key); each message is settled
        when its run has been advanced."""
        if self.gate.gates(fn.id):
            await self._admit_events(fn, items, slots)
            return
        new_runs: list[tuple[Msg, NewRun, Event]] = []
        for msg, event in items:
            if not fn.accepts(event):
                metrics.RUNS_SKIPPED.labels(fn.id, "filtered").inc()
                await settle(msg, True)
                await slots.give()
                continue
            new_runs.append(
                (
                    msg,
                    NewRun(
                        new_id(),
                        fn.id,
                        run_key(fn, event),
                        [event.id or ""],
                        cancels=cancel_waits(fn, event),
                        traceparent=msg.headers.get(TRACEPARENT) if msg.headers else None,
                    ),
                    event,
                )
            )
        if not new_runs:
            return
        try:
            created = await self.runs.create(
                [r for _, r, _ in new_runs], self.owner, self.settings.lease_seconds
            )
        except Exception as exc:
            report_failure(exc, "could not create runs; events will be redelivered")
            for msg, _, _ in new_runs:
                await settle(msg, False, 1.0)
                await slots.give()
            return
        for (msg, _, event), (run_id, is_new) in zip(new_runs, created, strict=True):
            if is_new:
                metrics.RUNS_STARTED.labels(fn.id).inc()
            self._spawn(msg, run_id, fresh=(fn, event) if is_new else None, slots=slots)

    async def _admit_events(
        self, fn: Function, items: list[tuple[Msg, Event]], slots: Slots
    ) -> None:
        """Events of a function with flow control go through the admission stage, each in
        its own transaction, a few at a time (locks per key keep the decisions consistent;
        the bound leaves pool connections for the runs being advanced)."""
        if fn.config.debounce or fn.config.batch_events:
            # Debounce keeps the last event and batches keep arrival order: one at a time.
            for msg, event in items:
                await self._admit_event(fn, msg, event, slots)
            return
        await asyncio.gather(*(self._admit_event(fn, msg, event, slots) for msg, event in items))

    async def _admit_event(self, fn: Function, msg: Msg, event: Event, slots: Slots) -> None:
        async with self.arrivals:
            await self._admit_one(fn, msg, event, slots)

    async def _admit_one(self, fn: Function, msg: Msg, event: Event, slots: Slots) -> None:
        if not fn.accepts(event):
            metrics.RUNS_SKIPPED.labels(fn.id, "filtered").inc()
            await settle(msg, True)
            await slots.give()
            return
        try:
            traceparent = msg.headers.get(TRACEPARENT) if msg.headers else None
            arrival = await self.gate.arrive(fn, event, traceparent)
        except Exception:
            log.exception("admission of event %s failed; it will be redelivered", event.id)
            await settle(msg, False, 1.0)
            await slots.give()
            return
        if arrival.start_now and arrival.run_id:
            self._spawn(msg, arrival.run_id, slots=slots, function_id=fn.id)
        else:
            await settle(msg, True)
            await slots.give()

    async def _learn_waits(self, msg: Msg) -> None:
        lines = msg.data.decode(errors="replace").split("\n")
        self.matcher.learn([(n, p) for n, _, p in (line.partition("\t") for line in lines)])

    async def _on_match(self, msgs: list[Msg]) -> None:
        try:
            await self.matcher.handle(msgs)
        finally:
            await self.matcher_slots.give(len(msgs))

    async def _on_work(self, msgs: list[Msg], function_id: str) -> None:
        triggers: list[tuple[Msg, str, str]] = []
        for msg in msgs:
            try:
                body = jsonutil.loads(msg.data)
                if "trigger_event_id" in body:  # from the repair sweep: see recovering.py
                    triggers.append((msg, body["function_id"], body["trigger_event_id"]))
                    continue
                run_id = body["run_id"]
            except Exception:
                await settle(msg, True)
                await self.resume_slots.of(function_id).give()
                continue
            self._spawn(
                msg, run_id, slots=self.resume_slots.of(function_id), function_id=function_id
            )
        if triggers:
            await self._on_stored_events(triggers)

    async def _on_stored_events(self, jobs: list[tuple[Msg, str, str]]) -> None:
        """Send stored events through their function's trigger path."""
        try:
            async with self.pool.connection() as conn:
                cur = await conn.execute(
                    'SELECT id, name, data, ts, "user" FROM events WHERE id = ANY(%s)',
                    ([event_id for _, _, event_id in jobs],),
                )
                stored = {
                    row[0]: Event(name=row[1], data=row[2], id=row[0], ts=row[3], user=row[4])
                    for row in await cur.fetchall()
                }
        except Exception as exc:
            report_failure(exc, "could not load stored events; their jobs will be redelivered")
            for msg, function_id, _ in jobs:
                await settle(msg, False, 1.0)
                await self.resume_slots.of(function_id).give()
            return
        by_function: dict[str, list[tuple[Msg, Event]]] = {}
        for msg, function_id, event_id in jobs:
            fn = self.functions.get(function_id)
            if fn is None or event_id not in stored:
                await settle(msg, True)  # gone (retention) or not hosted here any more
                await self.resume_slots.of(function_id).give()
                continue
            by_function.setdefault(function_id, []).append((msg, stored[event_id]))
        for function_id, items in by_function.items():
            await self._trigger(
                self.functions[function_id], items, self.resume_slots.of(function_id)
            )

    async def _on_timers(self, fn: Function, msgs: list[Msg]) -> None:
        for msg in msgs:
            if msg.subject == S.cron_tick_subject(fn.id):
                await self._on_cron_tick(fn, msg)
                continue
            try:
                body = jsonutil.loads(msg.data)
                run_id, timer_id = body["run_id"], body["timer_id"]
                if "fire_at" in body:
                    late = max(0.0, time.time() - float(body["fire_at"]))
                    metrics.TIMER_LATENESS.labels(fn.id).observe(late)
            except Exception:
                await settle(msg, True)
                await self.resume_slots.of(fn.id).give()
                continue
            self._spawn(
                msg, run_id, timer_id=timer_id, slots=self.resume_slots.of(fn.id), function_id=fn.id
            )

    async def _on_cron_tick(self, fn: Function, msg: Msg) -> None:
        tick = cron.latest_of(fn.config.cron_triggers, datetime.now(UTC))
        try:
            if await cron.claim_tick(self.pool, fn.id, tick, first_seen_counts=True):
                if self.gate.gates(fn.id):  # not leased at creation: admission decides
                    run_id, _ = await self._start_cron_run(fn, tick, 0.0)
                    self._spawn(msg, run_id, slots=self.resume_slots.of(fn.id), function_id=fn.id)
                    return
                run_id, event = await self._start_cron_run(fn, tick, self.settings.lease_seconds)
                self._spawn(
                    msg,
                    run_id,
                    fresh=(fn, event) if event else None,
                    slots=self.resume_slots.of(fn.id),
                )
                return
            await settle(msg, True)
        except Exception as exc:
            report_failure(exc, "cron tick for %s failed; redelivering", fn.id)
            await settle(msg, False, 1.0)
        await self.resume_slots.of(fn.id).give()

    async def _start_cron_run(
        self, fn: Function, tick: datetime, lease_seconds: float = 0.0
    ) -> tuple[str, Event | None]:
        """Create the tick's run; return it and, when new, the event it was created with
        (it is leased to this worker for ``lease_seconds``)."""
        key = cron.tick_key(tick)
        event = Event(
            name=cron.SCHEDULED_EVENT,
            id=f"{fn.id}:{key}",
            data={"cron": [t.cron for t in fn.config.cron_triggers], "tick": tick.isoformat()},
        )
        await self.bus.store([event])  # not published: only this function runs on it
        [(run_id, created)] = await self.runs.create(
            [NewRun(new_id(), fn.id, key, [event.id or ""])], self.owner, lease_seconds
        )
        if created:
            metrics.RUNS_STARTED.labels(fn.id).inc()
        return run_id, event if created else None

    async def _catch_up_cron(self) -> None:
        """Fire once for the newest tick missed while no worker was up."""
        now = datetime.now(UTC)
        for fn in self.functions.values():
            triggers: list[CronTrigger] = fn.config.cron_triggers
            if not triggers:
                continue
            tick = cron.latest_of(triggers, now)
            if await cron.claim_tick(self.pool, fn.id, tick, first_seen_counts=False):
                run_id, _ = await self._start_cron_run(fn, tick)
                log.info("cron %s: firing once for missed tick %s", fn.id, tick.isoformat())
                await self.js.publish(S.work_subject(fn.id), jsonutil.dumpb({"run_id": run_id}))
