"""Events PostgreSQL accepted that never started the run they should have.

The gateway answers 200 once an event is stored in PostgreSQL and published. A run can
still fail to start: the function's trigger consumer did not exist yet when the event
arrived (a function deployed while events flow), or a NATS host crash lost the newest
messages, or the publish after the store never happened. PostgreSQL is the truth, so the
repair sweep compares it with what the trigger consumer has already finished:

- the consumer's *horizon*: every event it holds with a stream sequence at or below its
  ack floor is done, so the first message after the floor (over its filter subjects) is
  the oldest one that may still be in flight; nothing pending means "now";
- each function keeps a scan position in ``trigger_scans``, starting when the function was
  declared; each pass reads the next events of its trigger names received before the
  horizon (minus a slack for the store-then-publish gap), and an event without a run of
  that function, and accepted by its trigger filter, is sent back through the trigger
  path as a work job. Run creation is idempotent on (function, key), so a job that races a
  late delivery starts nothing twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from psycopg_pool import AsyncConnectionPool

from ferryman import Event, Function
from ferryman_jetstream import subjects as S
from ferryman_worker.common import jsonutil
from ferryman_worker.storage.events import RECEIVED_HEADER

log = logging.getLogger("ferryman.repair")

# PostgreSQL stamps an event before it is published: an event still in flight can carry a
# receive time a little older than the stream's first unfinished message.
SLACK = timedelta(seconds=5)
SCAN_CHUNK = 2000

# An event counts as handled by a function when a run of that function was started by it,
# or flow control recorded its decision (skipped by a rate limit or a singleton, replaced
# by a later debounced event, folded into a batch: ``skipped_events``).
_NEXT_EVENTS = """
SELECT e.id, e.name, e.data, e.ts, e.received_at,
       EXISTS (SELECT 1 FROM runs r WHERE r.event_id = e.id AND r.function_id = %(fn)s)
       OR EXISTS (SELECT 1 FROM skipped_events s
                  WHERE s.event_id = e.id AND s.function_id = %(fn)s)
FROM events e
WHERE e.name = ANY(%(names)s)
  AND (e.received_at, e.id) > (%(at)s, %(id)s)
  AND e.received_at < %(until)s
ORDER BY e.received_at, e.id
LIMIT %(limit)s
"""


@dataclass(frozen=True)
class Unstarted:
    function_id: str
    event_id: str


def trigger_job(function_id: str, event_id: str) -> bytes:
    """The work job that sends a stored event through its function's trigger path."""
    return jsonutil.dumpb({"trigger_event_id": event_id, "function_id": function_id})


async def horizon(js: JetStreamContext, fn: Function) -> datetime | None:
    """Events received before this time are finished by ``fn``'s trigger consumer, or were
    never in it; None when the consumer does not exist (nothing to compare with yet)."""
    try:
        info = await js.consumer_info(S.EVENTS_STREAM, S.trigger_consumer(fn.id))
    except NotFoundError:
        return None
    now = datetime.now(UTC)
    if not info.num_pending and not info.num_ack_pending:
        return now
    floor = int(info.ack_floor.stream_seq or 0) if info.ack_floor else 0
    oldest = now
    for subject in info.config.filter_subjects or [info.config.filter_subject or ""]:
        try:
            msg = await js.get_msg(S.EVENTS_STREAM, seq=floor + 1, subject=subject, next=True)
        except NotFoundError:
            continue
        oldest = min(oldest, _received_at(msg.headers, msg.time))
    return oldest


def _received_at(headers: dict[str, str] | None, stream_time: Any) -> datetime:
    stamp = (headers or {}).get(RECEIVED_HEADER) or stream_time
    if isinstance(stamp, datetime):
        return stamp
    try:
        parsed = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def scan(pool: AsyncConnectionPool, js: JetStreamContext, fn: Function) -> list[Unstarted]:
    """Advance ``fn``'s scan position by one chunk; return the events that started nothing.

    One worker scans a function at a time (row lock, others skip it)."""
    names = sorted({t.event for t in fn.config.event_triggers})
    if not names:
        return []
    until = await horizon(js, fn)
    if until is None:
        return []
    until -= SLACK
    found: list[Unstarted] = []
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO trigger_scans (function_id, scanned_until) "
            "SELECT id, declared_at FROM functions WHERE id = %s ON CONFLICT DO NOTHING",
            (fn.id,),
        )
        cur = await conn.execute(
            "SELECT scanned_until, scanned_id FROM trigger_scans WHERE function_id = %s "
            "FOR UPDATE SKIP LOCKED",
            (fn.id,),
        )
        position = await cur.fetchone()
        if position is None or position[0] >= until:
            return []
        cur = await conn.execute(
            _NEXT_EVENTS,
            {
                "fn": fn.id,
                "names": names,
                "at": position[0],
                "id": position[1],
                "until": until,
                "limit": SCAN_CHUNK,
            },
        )
        rows = await cur.fetchall()
        for event_id, name, data, ts, _, handled in rows:
            if not handled and fn.accepts(Event(name=name, data=data, id=event_id, ts=ts)):
                found.append(Unstarted(fn.id, event_id))
        # A full chunk stops at its last event; a short one has read up to the horizon.
        last = (rows[-1][4], rows[-1][0]) if len(rows) == SCAN_CHUNK else (until, "")
        await conn.execute(
            "UPDATE trigger_scans SET scanned_until = %s, scanned_id = %s WHERE function_id = %s",
            (last[0], last[1], fn.id),
        )
        for unstarted in found:
            await js.publish(
                S.work_subject(fn.id),
                trigger_job(fn.id, unstarted.event_id),
                headers={"Nats-Msg-Id": f"trigger:{fn.id}:{unstarted.event_id}"},
            )
    if found:
        log.warning(
            "%d stored events of %s had started no run; starting them now", len(found), fn.id
        )
    return found
