"""The matcher: every event, checked against pending waits, in batches.

All workers share one durable consumer (``matcher``) on the EVENTS stream, so each event
is matched once. A wait matches an event that is named as it waits for, arrived after the
wait began and before its timeout, and satisfies ``match`` (equal values) or ``if`` (CEL
over ``event`` = the run's trigger and ``async`` = the candidate).

Cost. The matcher keeps, per event name, the match paths pending waits use (from
PostgreSQL every second, and announced by workers the moment they create a wait). An event
whose name no wait uses is acked unread. For the others it computes the value at each path
in Python and probes the index ``(event_name, match_path, match_value)`` — one indexed
lookup per event and path, however many waits are pending. ``if`` waits (no path) are
fetched by name and evaluated in Python.

Resolving writes the event into the wait row only if it is still unresolved, so an event
racing a timeout (or another matcher) resolves it exactly once. Then a step or invoke wait
gets its run a work job; a cancel wait cancels its run. The repair sweep replays the
events PostgreSQL received since its last pass through the same path, for anything a
message loss or a race let through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from psycopg_pool import AsyncConnectionPool

from ferryman._events import value_at
from ferryman._expressions import Expression
from ferryman_jetstream import subjects as S
from ferryman_worker.common import jsonutil, metrics
from ferryman_worker.common.outages import report_failure
from ferryman_worker.storage.cancelling import cancel_runs
from ferryman_worker.storage.events import RECEIVED_HEADER, EventBus
from ferryman_worker.transport.consuming import settle

log = logging.getLogger("ferryman.matcher")

EVENT_SUBJECT_PREFIX = S.EVENTS_PREFIX + "."
NO_PATH = ""  # an ``if`` wait, or one that takes any event of its name

# One probe per (event, path): equality on the index for paths, by name for the rest.
_CANDIDATES = """
SELECT w.id, w.expression, w.trigger_event, p.idx
FROM unnest(%s::text[], %s::text[], %s::jsonb[], %s::timestamptz[], %s::int[])
     AS p(name, path, value, at, idx)
CROSS JOIN LATERAL (
    SELECT id, expression, trigger_event, created_at, timeout_at FROM waits
    WHERE p.path <> '' AND event_name = p.name AND match_path = string_to_array(p.path, '.')
      AND match_value = p.value AND resolved_at IS NULL
    UNION ALL
    SELECT id, expression, trigger_event, created_at, timeout_at FROM waits
    WHERE p.path = '' AND event_name = p.name AND match_path IS NULL AND resolved_at IS NULL
) w
WHERE w.created_at < p.at AND (w.timeout_at IS NULL OR w.timeout_at >= p.at)
ORDER BY p.idx
"""

_RESOLVE = """
UPDATE waits w SET resolved_at = now(), event_id = v.event_id, event = v.event
FROM unnest(%s::text[], %s::text[], %s::jsonb[]) AS v(wait_id, event_id, event)
WHERE w.id = v.wait_id AND w.resolved_at IS NULL
RETURNING w.kind, w.run_id, w.function_id
"""

_PATHS = """
SELECT DISTINCT event_name, coalesce(array_to_string(match_path, '.'), '')
FROM waits WHERE resolved_at IS NULL
"""

_RECENT_EVENTS = """
SELECT name, data, id, ts, received_at, "user" FROM events
WHERE received_at > %s AND name = ANY(%s) ORDER BY received_at LIMIT %s
"""

SWEEP_BATCH = 500  # small chunks, so a sweep never holds up the live matcher for long


class Matcher:
    def __init__(self, pool: AsyncConnectionPool, js: JetStreamContext, bus: EventBus) -> None:
        self.pool = pool
        self.js = js
        self.bus = bus
        self._expressions: dict[str, Expression] = {}
        # event name -> match paths of pending waits ("" for if/any). Names missing here
        # are acked unread: the cheap path for the many events nobody waits for.
        self.paths: dict[str, set[str]] = {}
        self.static_paths: dict[str, set[str]] = {}
        self._learned_since_refresh: list[tuple[str, str]] = []
        self._swept_until = datetime.now(UTC) - timedelta(minutes=10)

    # -- what pending waits listen for --------------------------------------------------

    def learn(self, pairs: list[tuple[str, str]]) -> None:
        for name, path in pairs:
            if name:
                self.paths.setdefault(name, set()).add(path)
                self._learned_since_refresh.append((name, path))

    def learn_static(self, pairs: list[tuple[str, str]]) -> None:
        for name, path in pairs:
            self.static_paths.setdefault(name, set()).add(path)
        self.learn(pairs)

    async def refresh(self) -> None:
        self._learned_since_refresh = []
        async with self.pool.connection() as conn:
            cur = await conn.execute(_PATHS)
            rows = await cur.fetchall()
        paths: dict[str, set[str]] = {n: set(p) for n, p in self.static_paths.items()}
        # Announcements that arrived while the query ran may postdate its snapshot.
        for name, path in [*rows, *self._learned_since_refresh]:
            paths.setdefault(name, set()).add(path)
        self.paths = paths

    async def keep_fresh(self, stopping: asyncio.Event, every: float = 1.0) -> None:
        while not stopping.is_set():
            try:
                await self.refresh()
            except Exception as exc:
                log.info("matcher: could not refresh wait paths (%s)", exc)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stopping.wait(), every)

    def _expression(self, source: str) -> Expression:
        if source not in self._expressions:
            self._expressions[source] = Expression(source, where="wait")
        return self._expressions[source]

    # -- matching -----------------------------------------------------------------------

    async def handle(self, msgs: list[Msg]) -> None:
        """A batch from the matcher consumer: match, resolve, then ack."""
        events: list[tuple[dict[str, Any], datetime]] = []
        now = datetime.now(UTC)
        for msg in msgs:
            received = (msg.headers or {}).get(RECEIVED_HEADER)
            with contextlib.suppress(ValueError):
                if received:
                    lag = (now - datetime.fromisoformat(received)).total_seconds()
                    metrics.MATCHER_LAG.observe(max(0.0, lag))
            if msg.subject.removeprefix(EVENT_SUBJECT_PREFIX) not in self.paths:
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
        except Exception as exc:
            report_failure(exc, "matcher: batch failed; redelivering")
            for msg in msgs:
                await settle(msg, False, 1.0)
            return
        for msg in msgs:
            await settle(msg, True)

    async def match(self, events: list[tuple[dict[str, Any], datetime]]) -> int:
        """Resolve the waits these events satisfy; return how many were resolved."""
        names: list[str] = []
        probe_paths: list[str] = []
        values: list[str | None] = []
        stamps: list[datetime] = []
        indexes: list[int] = []
        for idx, (event, at) in enumerate(events):
            name = event.get("name", "")
            for path in self.paths.get(name, ()):
                value = value_at(event.get("data") or {}, path.split(".")) if path else None
                if path and value is None:
                    continue  # a match on a field this event lacks cannot hold
                names.append(name)
                probe_paths.append(path)
                values.append(jsonutil.dumps(value) if path else None)
                stamps.append(at)
                indexes.append(idx)
        if not names:
            return 0
        async with self.pool.connection() as conn:
            cur = await conn.execute(_CANDIDATES, (names, probe_paths, values, stamps, indexes))
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
        """Match the events PostgreSQL received since the last sweep (less a margin), for
        whatever the stream lost or a race let through; resolving twice is harmless."""
        await self.refresh()
        if not self.paths:
            self._swept_until = datetime.now(UTC) - timedelta(seconds=5)
            return 0
        resolved = 0
        since = self._swept_until - timedelta(seconds=5)
        while True:
            async with self.pool.connection() as conn:
                cur = await conn.execute(_RECENT_EVENTS, (since, list(self.paths), SWEEP_BATCH))
                rows = await cur.fetchall()
            events = [
                (
                    {"name": r[0], "data": r[1], "id": r[2], "ts": r[3]}
                    | ({"user": r[5]} if r[5] is not None else {}),
                    r[4],
                )
                for r in rows
            ]
            resolved += await self.match(events)
            if rows:
                since = rows[-1][4]
                self._swept_until = since
            if len(rows) < SWEEP_BATCH:
                break
            await asyncio.sleep(0.005)
        self._swept_until = max(self._swept_until, datetime.now(UTC) - timedelta(seconds=5))
        return resolved
