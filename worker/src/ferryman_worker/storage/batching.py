"""Group commit for completed steps: one statement and one fsync for many runs' checkpoints.

Runs advancing concurrently each finish steps at their own pace. Instead of a commit per
step, a completed step joins the next batch: while one batch is being written, the next
one gathers, so a lone run pays no extra latency and a busy worker pays one round trip
for hundreds of checkpoints. Fencing is per row: a row whose lease token is stale is not
written, and its writer is told so.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from psycopg_pool import AsyncConnectionPool

from ferryman_worker.common import jsonutil, metrics

BATCH_MAX = 500

_WRITE = """
INSERT INTO steps (run_id, step_id, name, position, op, status, output, attempts, parallel,
                   ended_at, started_at, attempt_started_at)
SELECT v.run, v.step, v.name, v.pos, v.op, 'COMPLETED', v.output::jsonb, v.attempts,
       v.parallel, now(), v.started, v.started
FROM jsonb_to_recordset(%s::jsonb)
     AS v(run text, step text, name text, pos int, op text, output text, attempts int,
          parallel bool, token bigint, started timestamptz)
WHERE EXISTS (SELECT 1 FROM runs r WHERE r.id = v.run AND r.lease_token = v.token)
ON CONFLICT (run_id, step_id) DO UPDATE SET status = 'COMPLETED', output = EXCLUDED.output,
    error = NULL, attempts = EXCLUDED.attempts, ended_at = EXCLUDED.ended_at,
    attempt_started_at = EXCLUDED.attempt_started_at
WHERE steps.status NOT IN ('COMPLETED', 'FAILED')
RETURNING run_id, step_id, (SELECT status FROM runs WHERE id = steps.run_id)
"""

_RELEASE = """
WITH v AS (
    SELECT * FROM jsonb_to_recordset(%s::jsonb)
        AS v(run text, token bigint, status text, attempt int, error text)
), r AS (
    UPDATE runs SET status = v.status, lease_owner = NULL, lease_expires = NULL,
        attempt = coalesce(v.attempt, runs.attempt), error = coalesce(v.error::jsonb, runs.error),
        updated_at = now()
    FROM v WHERE runs.id = v.run AND runs.lease_token = v.token
      AND runs.status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')
    RETURNING runs.id, runs.function_id
), sl AS (
    SELECT * FROM jsonb_to_recordset(%s::jsonb)
        AS sl(run text, step text, name text, pos int, par bool, wake timestamptz)
), s AS (
    INSERT INTO steps (run_id, step_id, name, position, op, status, attempts, parallel, wake_at)
    SELECT sl.run, sl.step, sl.name, sl.pos, 'sleep', 'SLEEPING', 1, sl.par, sl.wake
    FROM sl JOIN r ON r.id = sl.run
    ON CONFLICT (run_id, step_id) DO NOTHING
), t AS (
    INSERT INTO timers (run_id, timer_id, function_id, fire_at)
    SELECT sl.run, 'sleep-' || sl.step, r.function_id, sl.wake FROM sl JOIN r ON r.id = sl.run
    ON CONFLICT (run_id, timer_id) DO UPDATE SET fire_at = EXCLUDED.fire_at, fired_at = NULL
)
SELECT id FROM r
"""

Key = tuple[str, str]


_WRITE_COLUMNS = (
    "run",
    "step",
    "name",
    "pos",
    "op",
    "output",
    "attempts",
    "parallel",
    "token",
    "started",
)


def recordset(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    """``rows`` as one JSON array for ``jsonb_to_recordset(%s::jsonb)``: psycopg dumps an
    array parameter element by element in Python (~10 µs a row for ten columns, the
    largest share of a group commit's client CPU), one JSON text in ~1.5 µs. Values that
    are JSON already (outputs, errors) travel as strings and are cast in SQL."""
    return jsonutil.dumps([{c: row[c] for c in columns} for row in rows])


class GroupCommit:
    """Queue writes and flush them in batches; each writer awaits its own result."""

    kind = "writes"  # the ``kind`` label of the checkpoint metrics

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        self._queue: list[tuple[dict[str, Any], asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None

    def _key(self, params: dict[str, Any]) -> Any:
        raise NotImplementedError

    async def _write(self, batch: list[dict[str, Any]]) -> dict[Any, Any]:
        raise NotImplementedError

    async def write(self, params: dict[str, Any]) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((params, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._queue:
            batch: list[tuple[dict[str, Any], asyncio.Future[Any]]] = []
            later = []
            seen: set[Any] = set()
            for item in self._queue:
                key = self._key(item[0])
                if key in seen or len(batch) >= BATCH_MAX:
                    later.append(item)
                else:
                    seen.add(key)
                    batch.append(item)
            self._queue = later
            started = time.perf_counter()
            try:
                written = await self._write([p for p, _ in batch])
                metrics.CHECKPOINT_SECONDS.labels(self.kind).observe(time.perf_counter() - started)
                metrics.CHECKPOINT_BATCH.labels(self.kind).observe(len(batch))
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for params, future in batch:
                if not future.done():
                    future.set_result(written.get(self._key(params)))


class CompletedSteps(GroupCommit):
    """Completed steps; a writer gets the run's status, or None when the row was not
    written (lease lost, or the step was already stored)."""

    kind = "steps"

    def _key(self, params: dict[str, Any]) -> Key:
        return (params["run"], params["step"])

    async def _write(self, batch: list[dict[str, Any]]) -> dict[Any, Any]:
        rows = recordset(batch, _WRITE_COLUMNS)
        async with self.pool.connection() as conn:
            cur = await conn.execute(_WRITE, [rows])
            return {(r[0], r[1]): r[2] for r in await cur.fetchall()}


class Releases(GroupCommit):
    """Runs letting go of their lease (with the sleeps they start); a writer gets True
    when its run was still its own to release."""

    kind = "releases"

    def _key(self, params: dict[str, Any]) -> str:
        return str(params["run"])

    async def _write(self, batch: list[dict[str, Any]]) -> dict[Any, Any]:
        sleeps = [{**s, "run": p["run"]} for p in batch for s in p["sleeps"]]
        args = (
            recordset(batch, ("run", "token", "status", "attempt", "error")),
            recordset(sleeps, ("run", "step", "name", "pos", "par", "wake")),
        )
        async with self.pool.connection() as conn:
            cur = await conn.execute(_RELEASE, args)
            return {row[0]: True for row in await cur.fetchall()}


_LEASE_AND_LOAD = """
WITH v AS (
    SELECT * FROM jsonb_to_recordset(%s::jsonb) AS v(run text, timer text, owner text, secs float8)
), fired AS (
    UPDATE timers t SET fired_at = now() FROM v
    WHERE t.run_id = v.run AND t.timer_id = v.timer AND t.fired_at IS NULL
), l AS (
    UPDATE runs SET lease_owner = v.owner, lease_token = runs.lease_token + 1,
        lease_expires = now() + make_interval(secs => v.secs),
        status = CASE WHEN runs.status IN ('QUEUED', 'SLEEPING') THEN 'RUNNING'
                      ELSE runs.status END,
        started_at = coalesce(runs.started_at, now()), updated_at = now()
    FROM v WHERE runs.id = v.run AND runs.status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')
      AND (runs.lease_expires IS NULL OR runs.lease_expires < now()
           OR runs.lease_owner = v.owner)
    RETURNING runs.id, runs.function_id, runs.lease_token, runs.attempt, runs.event_ids,
              runs.status
), woken AS (
    UPDATE steps SET status = 'COMPLETED', output = 'null', ended_at = now()
    WHERE run_id IN (SELECT id FROM l) AND status = 'SLEEPING' AND wake_at <= now()
    RETURNING run_id, step_id
)
SELECT l.id, l.function_id, l.lease_token, l.attempt, l.event_ids, l.status,
    (SELECT coalesce(json_agg(json_build_array(s.step_id, s.position, s.op, s.status, s.output,
                s.error, s.attempts, s.wake_at, s.parallel, s.name) ORDER BY s.position),
            '[]'::json)
     FROM steps s WHERE s.run_id = l.id),
    (SELECT coalesce(json_agg(json_build_array(e.id, e.name, e.data, e.ts, e."user")),
            '[]'::json)
     FROM events e WHERE e.id = ANY(l.event_ids)),
    (SELECT coalesce(array_agg(w.step_id), '{}') FROM woken w WHERE w.run_id = l.id)
FROM l
"""


class Leases(GroupCommit):
    """Runs being resumed: lease, fire the timer, wake due sleeps and load history and
    events, for many runs in one statement; a writer gets its run's row, or None."""

    kind = "leases"

    def _key(self, params: dict[str, Any]) -> str:
        return str(params["run"])

    async def _write(self, batch: list[dict[str, Any]]) -> dict[Any, Any]:
        args = [recordset(batch, ("run", "timer", "owner", "secs"))]
        async with self.pool.connection() as conn:
            cur = await conn.execute(_LEASE_AND_LOAD, args)
            return {row[0]: row for row in await cur.fetchall()}


_FINISH = """
WITH v AS (
    SELECT * FROM jsonb_to_recordset(%s::jsonb)
        AS v(run text, token bigint, status text, output text, error text)
), ended AS (
    UPDATE runs SET status = v.status, output = v.output::jsonb, error = v.error::jsonb,
        ended_at = now(),
        updated_at = now(), lease_owner = NULL, lease_expires = NULL
    FROM v WHERE runs.id = v.run AND runs.lease_token = v.token
      AND runs.status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')
    RETURNING runs.id
), ev AS (
    SELECT * FROM jsonb_to_recordset(%s::jsonb)
        AS ev(run text, id text, name text, data jsonb, ts bigint)
)
INSERT INTO events (id, name, data, ts)
SELECT ev.id, ev.name, ev.data, ev.ts FROM ev JOIN ended ON ended.id = ev.run
ON CONFLICT (id) DO UPDATE SET id = EXCLUDED.id RETURNING id, received_at
"""


class Finishes(GroupCommit):
    """Runs ending, with their internal events, many in one statement; a writer gets
    when each of its events was received, or None when the run was not its to end."""

    kind = "finishes"

    def _key(self, params: dict[str, Any]) -> str:
        return str(params["run"])

    async def _write(self, batch: list[dict[str, Any]]) -> dict[Any, Any]:
        events = [(p["run"], e) for p in batch for e in p["events"]]
        args = (
            recordset(batch, ("run", "token", "status", "output", "error")),
            jsonutil.dumps(
                [{"run": run, "id": e.id, "name": e.name, "data": e.data, "ts": e.ts}
                 for run, e in events]
            ),
        )  # fmt: skip
        async with self.pool.connection() as conn:
            cur = await conn.execute(_FINISH, args)
            received = {row[0]: row[1] for row in await cur.fetchall()}
        by_run: dict[Any, Any] = {}
        for run, event in events:
            if event.id in received:
                by_run.setdefault(run, {})[event.id] = received[event.id]
        return by_run
