"""The matcher: every event, checked against pending waits, in batches.

All workers share one durable consumer (``matcher``) on the EVENTS stream, so each event
is matched once. A batch costs one indexed query: an event nobody waits for finds no row
and is acked. A wait matches an event that is named as it waits for, arrived after the
wait began and before its timeout, and satisfies ``match`` (equal values, compared in
SQL) or ``if`` (CEL over ``event`` = the run's trigger and ``async`` = the candidate).

Resolving writes the event into the wait row only if it is still unresolved, so an event
racing a timeout (or another matcher) resolves it exactly once. Then a step or invoke
wait gets its run a work job; a cancel wait cancels its run. The repair sweep runs the
same resolution over PostgreSQL for anything a message loss or a race let through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from psycopg_pool import AsyncConnectionPool

from ferryman._expressions import Expression
from ferryman_jetstream import subjects as S
from ferryman_worker import jsonutil, metrics
from ferryman_worker.cancelling import cancel_runs
from ferryman_worker.consuming import settle
from ferryman_worker.events import RECEIVED_HEADER, EventBus

log = logging.getLogger("ferryman.matcher")

_CANDIDATES = """
SELECT w.id, w.expression, w.trigger_event, e.idx
FROM unnest(%s::text[], %s::jsonb[], %s::timestamptz[], %s::int[]) AS e(name, data, at, idx)
JOIN waits w ON w.event_name = e.name AND w.resolved_at IS NULL
WHERE w.created_at < e.at
  AND (w.timeout_at IS NULL OR w.timeout_at >= e.at)
  AND (w.match_path IS NULL OR w.match_value = e.data #> w.match_path)
ORDER BY e.idx
"""

_RESOLVE = """
UPDATE waits w SET resolved_at = now(), event_id = v.event_id, event = v.event
FROM unnest(%s::text[], %s::text[], %s::jsonb[]) AS v(wait_id, event_id, event)
WHERE w.id = v.wait_id AND w.resolved_at IS NULL
RETURNING w.kind, w.run_id, w.function_id
"""

_SWEEP = """
SELECT e.name, e.data, e.id, e.ts, e.received_at
FROM waits w JOIN events e ON e.name = w.event_name
WHERE w.resolved_at IS NULL AND w.created_at < now() - interval '2 seconds'
  AND e.received_at > w.created_at AND e.received_at > now() - interval '10 minutes'
  AND (w.timeout_at IS NULL OR e.received_at <= w.timeout_at)
  AND (w.match_path IS NULL OR w.match_value = e.data #> w.match_path)
ORDER BY e.received_at LIMIT 1000
"""


EVENT_SUBJECT_PREFIX = S.EVENTS_PREFIX + "."


class Matcher:
    def __init__(self, pool: AsyncConnectionPool, js: JetStreamContext, bus: EventBus) -> None:
        self.pool = pool
        self.js = js
        self.bus = bus
        self._expressions: dict[str, Expression] = {}
        # Names some pending wait listens for. An event with another name is acked unread:
        # the cheap path for the many events nobody waits for. Refreshed from PostgreSQL
        # every second and on every announcement; the repair sweep covers the rest.
        self.names: set[str] = set()
        self.static_names: set[str] = set()

    def learn(self, names: list[str]) -> None:
        self.names.update(n for n in names if n)

    async def refresh_names(self) -> None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT DISTINCT event_name FROM waits WHERE resolved_at IS NULL"
            )
            pending = {row[0] for row in await cur.fetchall()}
        self.names = pending | self.static_names

    async def keep_names_fresh(self, stopping: asyncio.Event, every: float = 1.0) -> None:
        while not stopping.is_set():
            try:
                await self.refresh_names()
            except Exception as exc:
                log.info("matcher: could not refresh wait names (%s)", exc)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stopping.wait(), every)

    def _expression(self, source: str) -> Expression:
        if source not in self._expressions:
            self._expressions[source] = Expression(source, where="wait")
        return self._expressions[source]

    async def handle(self, msgs: list[Msg]) -> None:
        """A batch from the matcher consumer: match, resolve, then ack."""
        events: list[tuple[dict[str, Any], datetime]] = []
        for msg in msgs:
            if msg.subject.removeprefix(EVENT_SUBJECT_PREFIX) not in self.names:
                metrics.EVENTS_UNWATCHED.inc()
                continue
            try:
                event = jsonutil.loads(msg.data)
                stamp = (msg.headers or {}).get(RECEIVED_HEADER)
                at = datetime.fromisoformat(stamp) if stamp else datetime.now(UTC)
                events.append((event, at))
            except Exception:
                log.warning("matcher: unreadable event on %s", msg.subject)
        try:
            await self.match(events)
        except Exception:
            log.exception("matcher: batch failed; redelivering")
            for msg in msgs:
                await settle(msg, False, 1.0)
            return
        for msg in msgs:
            await settle(msg, True)

    async def match(self, events: list[tuple[dict[str, Any], datetime]]) -> int:
        """Resolve the waits these events satisfy; return how many were resolved."""
        if not events:
            return 0
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                _CANDIDATES,
                (
                    [e.get("name", "") for e, _ in events],
                    [jsonutil.dumps(e.get("data") or {}) for e, _ in events],
                    [at for _, at in events],
                    list(range(len(events))),
                ),
            )
            rows = await cur.fetchall()
        chosen: dict[str, dict[str, Any]] = {}
        for wait_id, expression, trigger, idx in rows:
            if wait_id in chosen:
                continue  # the earliest matching event wins
            candidate = events[idx][0]
            if expression and not self._expression(expression).matches(
                {"event": trigger or {}, "async": candidate}
            ):
                continue
            chosen[wait_id] = candidate
        if not chosen:
            return 0
        return await self.resolve(chosen)

    async def resolve(self, chosen: dict[str, dict[str, Any]]) -> int:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                _RESOLVE,
                (
                    list(chosen),
                    [e.get("id") for e in chosen.values()],
                    [jsonutil.dumps(e) for e in chosen.values()],
                ),
            )
            resolved = await cur.fetchall()
        to_cancel = [run_id for kind, run_id, _ in resolved if kind == "cancel"]
        for kind, run_id, function_id in resolved:
            if kind != "cancel":
                await self.js.publish(
                    S.work_subject(function_id), jsonutil.dumpb({"run_id": run_id})
                )
        if to_cancel:
            await cancel_runs(self.pool, self.bus, run_ids=to_cancel, reason="cancel_on event")
        metrics.WAITS_RESOLVED.inc(len(resolved))
        return len(resolved)

    async def sweep(self) -> int:
        """Match events PostgreSQL holds against waits that are still pending."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(_SWEEP)
            rows = await cur.fetchall()
        events = [({"name": r[0], "data": r[1], "id": r[2], "ts": r[3]}, r[4]) for r in rows]
        return await self.match(events)
