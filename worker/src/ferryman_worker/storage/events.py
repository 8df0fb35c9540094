"""Events in and out: validate, store in PostgreSQL, publish to the EVENTS stream.

The gateway, ``step.send_event``, ``Ferryman.send`` inside a worker and the internal
``ferryman/...`` events all pass through :class:`EventBus`. PostgreSQL first (the truth),
then JetStream with ``Nats-Msg-Id`` = event id, so a resend is dropped by the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nats.js import JetStreamContext
from psycopg_pool import AsyncConnectionPool

from ferryman import Event
from ferryman_jetstream import InvalidEventName, event_subject, validate_event_name
from ferryman_worker.common import jsonutil, tracing
from ferryman_worker.common.ids import new_id
from ferryman_worker.storage.batching import GroupCommit

MAX_EVENTS_PER_REQUEST = 5000
# When PostgreSQL received the event: a wait counts only events that arrived after it began.
RECEIVED_HEADER = "Ferryman-Received-At"
WAITS_ANNOUNCED = "ferryman.waits.added"


class BadEvent(ValueError):
    """An event the API refuses; the message says which one and why."""


@dataclass
class EventLimits:
    max_event_bytes: int = 512 * 1024
    max_events: int = MAX_EVENTS_PER_REQUEST


def parse_events(payload: Any, limits: EventLimits) -> list[Event]:
    """Validate what a client sent (one event or a list) into stamped events."""
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        raise BadEvent("no events: send one event object or a non-empty array of them")
    if len(items) > limits.max_events:
        raise BadEvent(f"{len(items)} events in one request; the limit is {limits.max_events}")
    now = int(time.time() * 1000)
    events = []
    first_index: dict[str, int] = {}
    for index, item in enumerate(items):
        where = f"event {index}" if isinstance(payload, list) else "event"
        if not isinstance(item, dict):
            raise BadEvent(f'{where} must be an object like {{"name": ..., "data": {{}}}}')
        try:
            name = validate_event_name(item.get("name"))
        except InvalidEventName as exc:
            raise BadEvent(f"{where}: {exc}") from None
        data = item.get("data", {})
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise BadEvent(f"{where} ({name}): 'data' must be an object, got {type(data).__name__}")
        event_id = item.get("id") or new_id()
        if not isinstance(event_id, str) or len(event_id) > 256:
            raise BadEvent(f"{where} ({name}): 'id' must be a string of at most 256 characters")
        if event_id in first_index:
            # One statement cannot store the same id twice; and which copy wins is unclear.
            raise BadEvent(
                f"{where} ({name}): 'id' {event_id!r} is also the id of event "
                f"{first_index[event_id]} in this request; give each event its own id"
            )
        first_index[event_id] = index
        ts = item.get("ts", now)
        if not isinstance(ts, int) or isinstance(ts, bool) or not 0 <= ts < 2**63:
            raise BadEvent(f"{where} ({name}): 'ts' must be milliseconds since the epoch")
        user = item.get("user")
        if user is not None and not isinstance(user, dict):
            raise BadEvent(f"{where} ({name}): 'user' must be an object, got {type(user).__name__}")
        size = len(jsonutil.dumpb(item))
        if size > limits.max_event_bytes:
            raise BadEvent(
                f"{where} ({name}) is {size} bytes; the event size limit is "
                f"{limits.max_event_bytes} bytes"
            )
        events.append(Event(name=name, data=data, id=event_id, ts=ts, user=user))
    return events


_STORE = (
    'INSERT INTO events (id, name, data, ts, "user") '
    "SELECT * FROM jsonb_to_recordset(%s::jsonb) "
    'AS v(id text, name text, data jsonb, ts bigint, "user" jsonb) '
    # A no-op update, so RETURNING also reports the events we already had.
    "ON CONFLICT (id) DO UPDATE SET id = EXCLUDED.id "
    "RETURNING id, received_at"
)
# A request with at least this many events is one statement of its own; smaller ones join
# the group commit of concurrent requests.
GROUP_BELOW = 64


async def _insert(pool: AsyncConnectionPool, events: list[Event]) -> dict[str, datetime]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            _STORE,
            # one JSON parameter, not an array per column (see batching.recordset)
            [
                jsonutil.dumps(
                    [
                        {"id": e.id, "name": e.name, "data": e.data, "ts": e.ts, "user": e.user}
                        for e in events
                    ]
                )
            ],
        )
        return {row[0]: row[1] for row in await cur.fetchall()}


class _StoredEvents(GroupCommit):
    """Events of concurrent requests stored in one statement and one fsync: a lone
    request pays no extra latency, 64 clients pay one round trip for all of them."""

    kind = "events"

    def _key(self, params: dict[str, Any]) -> str:
        return str(params["event"].id)

    async def _write(self, batch: list[dict[str, Any]]) -> dict[Any, Any]:
        return await _insert(self.pool, [p["event"] for p in batch])


class EventBus:
    """Stores events and publishes them; idempotent on event id."""

    def __init__(self, pool: AsyncConnectionPool, js: JetStreamContext, nc: Any = None) -> None:
        self.pool = pool
        self.js = js
        self.nc = nc
        self._stored = _StoredEvents(pool)

    async def announce_waits(self, waits: list[tuple[str, str]]) -> None:
        """Tell every matcher that waits for ``(event name, match path)`` now exist."""
        if self.nc is not None and waits:
            lines = "\n".join(f"{name}\t{path}" for name, path in waits)
            with contextlib.suppress(Exception):  # best effort: the matchers also poll
                await self.nc.publish(WAITS_ANNOUNCED, lines.encode())

    async def store(self, events: list[Event]) -> dict[str, datetime]:
        """Store events (a known id keeps its first version); return when each arrived."""
        if len(events) >= GROUP_BELOW:
            return await _insert(self.pool, events)
        stamps = await asyncio.gather(*(self._stored.write({"event": e}) for e in events))
        return {e.id or "": at for e, at in zip(events, stamps, strict=True)}

    async def publish(
        self, events: list[Event], received: dict[str, datetime], traceparent: str | None = None
    ) -> None:
        """``traceparent``: the trace the events belong to (POST /e's header); inside a
        traced step, the step's span."""
        if traceparent is None and tracing.tracer is not None:
            traceparent = tracing.current_traceparent()
        futures = []
        for event in events:
            headers = {"Nats-Msg-Id": event.id or ""}
            if event.id in received:
                headers[RECEIVED_HEADER] = received[event.id].isoformat()
            if traceparent is not None:
                headers[tracing.TRACEPARENT] = traceparent
            futures.append(
                await self.js.publish_async(
                    event_subject(event.name), jsonutil.dumpb(event.to_wire()), headers=headers
                )
            )
        for future in futures:
            await future

    async def send(self, events: list[Event]) -> list[str]:
        """Store, then publish. Ids are assigned to events that have none."""
        stamped = [e if e.id else e.model_copy(update={"id": new_id()}) for e in events]
        for event in stamped:
            validate_event_name(event.name)
        await self.publish(stamped, await self.store(stamped))
        return [e.id or "" for e in stamped]


def internal_event(name: str, data: dict[str, Any], event_id: str) -> Event:
    return Event(name=name, data=data, id=event_id)
