"""Replaying runs: a failed or cancelled run again, whole or from a chosen step.

A replay is a new run of the same function with the same events, linked to the original
by ``replay_of``. Replaying from a step copies the completed steps before it, so they
keep their recorded results and do not execute again.
"""

from __future__ import annotations

from datetime import datetime

from nats.js import JetStreamContext
from psycopg_pool import AsyncConnectionPool

from ferryman_jetstream import subjects as S
from ferryman_worker.common import jsonutil, metrics
from ferryman_worker.common.ids import new_id
from ferryman_worker.storage.queries import run_filter

REPLAYABLE = ("FAILED", "CANCELLED")


class ReplayError(ValueError):
    """The run cannot be replayed as asked; the message says why."""


async def replay_run(
    pool: AsyncConnectionPool, js: JetStreamContext, run_id: str, from_step: str | None = None
) -> str:
    """Start a replay of ``run_id``; return the new run's id."""
    new_run = new_id()
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "SELECT function_id, status, event_id, event_ids FROM runs WHERE id = %s FOR UPDATE",
            (run_id,),
        )
        row = await cur.fetchone()
        if row is None:
            raise ReplayError(f"no run {run_id!r}")
        function_id, status, event_id, event_ids = row
        if status not in REPLAYABLE:
            raise ReplayError(
                f"run {run_id} is {status}; only FAILED or CANCELLED runs can be replayed"
            )
        await conn.execute(
            "INSERT INTO runs (id, function_id, event_id, event_ids, status, replay_of) "
            "VALUES (%s, %s, %s, %s, 'QUEUED', %s)",
            (new_run, function_id, event_id, event_ids, run_id),
        )
        if from_step is not None:
            cur = await conn.execute(
                "SELECT position FROM steps WHERE run_id = %s AND step_id = %s",
                (run_id, from_step),
            )
            found = await cur.fetchone()
            if found is None:
                raise ReplayError(f"run {run_id} has no step {from_step!r}; see `runs show`")
            await conn.execute(
                "INSERT INTO steps (run_id, step_id, name, position, op, status, output, "
                "attempts, parallel, started_at, ended_at) "
                "SELECT %s, step_id, name, position, op, status, output, attempts, parallel, "
                "started_at, ended_at FROM steps "
                "WHERE run_id = %s AND position < %s AND status = 'COMPLETED'",
                (new_run, run_id, found[0]),
            )
    await js.publish(S.work_subject(function_id), jsonutil.dumpb({"run_id": new_run}))
    metrics.RUNS_REPLAYED.inc()
    return new_run


async def replay_runs(
    pool: AsyncConnectionPool,
    js: JetStreamContext,
    *,
    function_id: str | None = None,
    status: str | None = None,
    after: datetime | None = None,
    before: datetime | None = None,
) -> list[str]:
    """Replay every failed or cancelled run the filter selects; return the new run ids."""
    if status is not None and status not in REPLAYABLE:
        raise ReplayError(f"status must be FAILED or CANCELLED to replay, not {status}")
    where, params = run_filter(function_id=function_id, status=status, after=after, before=before)
    async with pool.connection() as conn:
        cur = await conn.execute(
            f"SELECT id FROM runs WHERE {where} AND status IN ('FAILED','CANCELLED') "
            "ORDER BY created_at LIMIT 10000".encode(),
            params,
        )
        ids = [r[0] for r in await cur.fetchall()]
    return [await replay_run(pool, js, run_id) for run_id in ids]
