"""The repair sweep: re-arm what PostgreSQL says is pending and JetStream does not deliver.

PostgreSQL is the truth. A host crash can lose JetStream's newest messages, and a timer
armed while NATS was down was never armed at all. Every interval, each worker:

- finds timers due more than a grace period ago and not fired, and sends their runs a
  work job (a late firing is then a harmless duplicate);
- matches pending waits against the events PostgreSQL received since they began;
- finds runs that should be moving (queued or running, no lease, no pending timer) but
  have not changed for a while, and sends them a work job;
- finds stored events that started no run of a function they trigger, and sends them
  through its trigger path (:mod:`ferryman_worker.execution.recovering`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection

from nats.js import JetStreamContext
from psycopg_pool import AsyncConnectionPool

from ferryman import Function
from ferryman_jetstream import subjects as S
from ferryman_worker.common import jsonutil, metrics
from ferryman_worker.execution import recovering
from ferryman_worker.execution.matching import Matcher
from ferryman_worker.storage.runs import RunStore
from ferryman_worker.transport.timers import overdue

log = logging.getLogger("ferryman.repair")


async def sweep(pool: AsyncConnectionPool, js: JetStreamContext, grace: float) -> int:
    """One pass; returns how many runs were sent a job."""
    sent = 0
    for timer in await overdue(pool, grace):
        async with pool.connection() as conn:
            await conn.execute(
                "UPDATE timers SET fired_at = now() WHERE run_id = %s AND timer_id = %s",
                (timer.run_id, timer.timer_id),
            )
        await js.publish(
            S.work_subject(timer.function_id), jsonutil.dumpb({"run_id": timer.run_id})
        )
        metrics.TIMERS_REARMED.inc()
        sent += 1
    runs = RunStore(pool)
    stalled = await runs.stalled(older_than_seconds=grace * 2)
    stalled += await runs.resolved_waiting(older_than_seconds=grace)
    for run_id, function_id in stalled:
        await js.publish(S.work_subject(function_id), jsonutil.dumpb({"run_id": run_id}))
        metrics.RUNS_REQUEUED.inc()
        sent += 1
    if stalled:
        await runs.touch([r for r, _ in stalled])
    return sent


async def repair_loop(
    pool: AsyncConnectionPool,
    js: JetStreamContext,
    interval: float,
    stopping: asyncio.Event,
    matcher: Matcher | None = None,
    functions: Collection[Function] = (),
) -> None:
    while not stopping.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval)
        if stopping.is_set():
            return
        try:
            count = await sweep(pool, js, grace=max(2.0, interval))
            if matcher is not None:
                count += await matcher.sweep()
            for fn in functions:
                count += len(await recovering.scan(pool, js, fn))
            if count:
                log.info("repair sweep re-queued %d runs", count)
        except Exception as exc:
            log.warning("repair sweep failed: %s", exc)
