"""Cancelling runs: one, many by id, or every run matching a filter.

A cancelled run stops where it is: a step already executing finishes (its result is
kept), nothing after it runs, and its sleeps and waits never fire. Cancelling marks the
run, resolves its waits and timers so nothing re-arms them, and emits
``ferryman/function.cancelled``.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import Counter, Histogram
from psycopg_pool import AsyncConnectionPool

from ferryman_worker.common import jsonutil, metrics
from ferryman_worker.storage.events import EventBus, internal_event
from ferryman_worker.storage.queries import run_filter

CANCELLED_EVENT = "ferryman/function.cancelled"


async def cancel_runs(
    pool: AsyncConnectionPool,
    bus: EventBus,
    *,
    reason: str = "cancelled",
    run_ids: list[str] | None = None,
    function_id: str | None = None,
    status: str | None = None,
    after: datetime | None = None,
    before: datetime | None = None,
    finished: Counter = metrics.RUNS_FINISHED,
    duration: Histogram = metrics.RUN_DURATION,
    unstarted_only: bool = False,
) -> list[str]:
    """Cancel every unfinished run the filter selects; return their ids. ``finished`` and
    ``duration``: the metrics of the process that cancels (worker or gateway).
    ``unstarted_only``: only runs that never started (for ``timeouts.start``)."""
    where, params = run_filter(
        run_ids=run_ids, function_id=function_id, status=status, after=after, before=before
    )
    if unstarted_only:
        where += " AND started_at IS NULL"
    error = jsonutil.dumps({"name": "Cancelled", "message": reason})
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            (
                "UPDATE runs SET status = 'CANCELLED', ended_at = now(), updated_at = now(), "
                f"error = %s::jsonb WHERE {where} "
                "AND status NOT IN ('COMPLETED','FAILED','CANCELLED') "
                "RETURNING id, function_id, event_id,"
                " extract(epoch FROM now() - created_at)::float8"
            ).encode(),
            [error, *params],
        )
        rows = await cur.fetchall()
        ids = [r[0] for r in rows]
        if ids:
            await conn.execute(
                "UPDATE waits SET resolved_at = now() WHERE run_id = ANY(%s) "
                "AND resolved_at IS NULL",
                (ids,),
            )
            await conn.execute(
                "UPDATE timers SET fired_at = now() WHERE run_id = ANY(%s) AND fired_at IS NULL",
                (ids,),
            )
    for _, fn_id, _, seconds in rows:
        finished.labels(fn_id, "CANCELLED").inc()
        duration.labels(fn_id, "CANCELLED").observe(seconds)
    if rows:
        await bus.send(
            [
                internal_event(
                    CANCELLED_EVENT,
                    {"function_id": fn, "run_id": run_id, "event_id": event_id, "reason": reason},
                    f"{CANCELLED_EVENT}:{run_id}",
                )
                for run_id, fn, event_id, _ in rows
            ]
        )
    return ids
