"""Group commit for completed steps: one statement and one fsync for many runs' checkpoints.

Runs advancing concurrently each finish steps at their own pace. Instead of a commit per
step, a completed step joins the next batch: while one batch is being written, the next
one gathers, so a lone run pays no extra latency and a busy worker pays one round trip
for hundreds of checkpoints. Fencing is per row: a row whose lease token is stale is not
written, and its writer is told so.
"""

from __future__ import annotations

import asyncio
from typing import Any

from psycopg_pool import AsyncConnectionPool

BATCH_MAX = 500

_WRITE = """
INSERT INTO steps (run_id, step_id, name, position, op, status, output, attempts, parallel,
                   ended_at)
SELECT v.run, v.step, v.name, v.pos, v.op, 'COMPLETED', v.output::jsonb, v.attempts,
       v.parallel, now()
FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[], %s::text[], %s::text[], %s::int[],
            %s::bool[], %s::bigint[])
     AS v(run, step, name, pos, op, output, attempts, parallel, token)
WHERE EXISTS (SELECT 1 FROM runs r WHERE r.id = v.run AND r.lease_token = v.token)
ON CONFLICT (run_id, step_id) DO UPDATE SET status = 'COMPLETED', output = EXCLUDED.output,
    error = NULL, attempts = EXCLUDED.attempts, ended_at = EXCLUDED.ended_at
WHERE steps.status NOT IN ('COMPLETED', 'FAILED')
RETURNING run_id, step_id, (SELECT status FROM runs WHERE id = steps.run_id)
"""

Key = tuple[str, str]


class CompletedSteps:
    """Writes completed steps in batches; ``write`` returns the run's status, or None when
    the row was not written (lease lost, or the step was already stored)."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        self._queue: list[tuple[dict[str, Any], asyncio.Future[str | None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def write(self, params: dict[str, Any]) -> str | None:
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._queue.append((params, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._queue:
            batch: list[tuple[dict[str, Any], asyncio.Future[str | None]]] = []
            later = []
            seen: set[Key] = set()
            for item in self._queue:
                key = (item[0]["run"], item[0]["step"])
                if key in seen or len(batch) >= BATCH_MAX:
                    later.append(item)
                else:
                    seen.add(key)
                    batch.append(item)
            self._queue = later
            try:
                written = await self._write([p for p, _ in batch])
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for params, future in batch:
                if not future.done():
                    future.set_result(written.get((params["run"], params["step"])))

    async def _write(self, batch: list[dict[str, Any]]) -> dict[Key, str]:
        columns = ("run", "step", "name", "pos", "op", "output", "attempts", "parallel", "token")
        arrays = [[p[c] for p in batch] for c in columns]
        async with self.pool.connection() as conn:
            cur = await conn.execute(_WRITE, arrays)
            return {(r[0], r[1]): r[2] for r in await cur.fetchall()}
