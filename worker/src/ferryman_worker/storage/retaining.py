"""Retention: finished runs, their steps and old events are deleted once they are older
than ``FERRYMAN_RETENTION_DAYS`` (30 by default; 0 keeps everything).

Deleting is done in small batches, each its own short statement with ``SKIP LOCKED``,
with a pause between batches, so it never holds locks the hot path needs for long and
never blocks on a row a worker is writing. One worker at a time does it (an advisory
lock); the others skip the pass.

What goes, oldest first:

- runs ``COMPLETED``, ``FAILED`` or ``CANCELLED`` last changed before the cut-off, with
  their steps, timers and waits (foreign keys cascade) and their step attempts;
- events received before the cut-off that no remaining run was started by, and that no
  unfinished run holds (a run sleeping for 60 days keeps its events), with the flow-control
  notes about them (``skipped_events``);
- run keys (idempotency) that expired before the cut-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("ferryman.retention")

LOCK_KEY = 0x46_52_59_52_45_54  # "FRYRET": one retention pass at a time, cluster-wide
PAUSE_SECONDS = 0.05

_RUNS = """
WITH doomed AS (
    SELECT id FROM runs
    WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND updated_at < %(cutoff)s
    ORDER BY updated_at LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
), attempts AS (
    DELETE FROM step_attempts WHERE run_id IN (SELECT id FROM doomed)
)
DELETE FROM runs WHERE id IN (SELECT id FROM doomed) RETURNING id
"""

# Keyset over (received_at, id): events a live run holds stay at the front of the old
# ones, so each batch starts after the last one instead of meeting them again.
_EVENTS = """
WITH candidates AS (
    SELECT e.id, e.received_at FROM events e
    WHERE e.received_at < %(cutoff)s AND (e.received_at, e.id) > (%(after_at)s, %(after_id)s)
      AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.event_id = e.id)
    ORDER BY e.received_at, e.id LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
), held AS (
    SELECT unnest(r.event_ids) AS id FROM runs r
    WHERE r.status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')
      AND r.event_ids && ARRAY(SELECT id FROM candidates)
), doomed AS (
    SELECT id FROM candidates WHERE id NOT IN (SELECT id FROM held)
), notes AS (
    DELETE FROM skipped_events WHERE event_id IN (SELECT id FROM doomed)
), gone AS (
    DELETE FROM events WHERE id IN (SELECT id FROM doomed) RETURNING id
)
SELECT (SELECT count(*) FROM candidates), (SELECT count(*) FROM gone), last.received_at, last.id
FROM (SELECT 1) one
LEFT JOIN (SELECT received_at, id FROM candidates ORDER BY received_at DESC, id DESC LIMIT 1)
    last ON true
"""

_KEYS = """
DELETE FROM run_keys WHERE ctid IN (
    SELECT ctid FROM run_keys WHERE expires_at < %(cutoff)s LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
) RETURNING 1
"""


@dataclass
class Purged:
    runs: int = 0
    events: int = 0
    keys: int = 0

    def __bool__(self) -> bool:
        return bool(self.runs or self.events or self.keys)


async def purge(
    pool: AsyncConnectionPool, older_than: timedelta, batch: int = 1000, max_batches: int = 1000
) -> Purged:
    """Delete what is older than ``older_than``, in batches; return how much went.

    Returns an empty count when another worker is already purging.
    """
    cutoff = datetime.now(UTC) - older_than
    purged = Purged()
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
        row = await cur.fetchone()
        if not row or not row[0]:
            return purged
        try:
            for sql, field in ((_RUNS, "runs"), (_KEYS, "keys")):
                for _ in range(max_batches):
                    cur = await conn.execute(sql, {"cutoff": cutoff, "batch": batch})
                    deleted = len(await cur.fetchall())
                    setattr(purged, field, getattr(purged, field) + deleted)
                    if deleted < batch:
                        break
                    await asyncio.sleep(PAUSE_SECONDS)  # let the hot path in between
            after_at, after_id = datetime.min.replace(tzinfo=UTC), ""
            for _ in range(max_batches):
                cur = await conn.execute(
                    _EVENTS,
                    {"cutoff": cutoff, "batch": batch, "after_at": after_at, "after_id": after_id},
                )
                row = await cur.fetchone()
                assert row is not None
                seen, deleted, last_at, last_id = row
                purged.events += deleted
                if seen < batch:
                    break
                after_at, after_id = last_at, last_id
                await asyncio.sleep(PAUSE_SECONDS)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return purged


async def retention_loop(
    pool: AsyncConnectionPool, days: float, interval: float, stopping: asyncio.Event
) -> None:
    """Purge every ``interval`` seconds while the worker runs (``days`` 0: never)."""
    if days <= 0:
        return
    while not stopping.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval)
        if stopping.is_set():
            return
        try:
            purged = await purge(pool, timedelta(days=days))
            if purged:
                log.info(
                    "retention: deleted %d runs, %d events and %d expired run keys "
                    "older than %g days",
                    purged.runs,
                    purged.events,
                    purged.keys,
                    days,
                )
        except Exception as exc:
            log.warning("retention pass failed (%s); trying again later", exc)
