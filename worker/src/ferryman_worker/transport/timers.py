"""Timers: PostgreSQL records them, JetStream schedules fire them.

Arming publishes a one-shot ``@at`` schedule whose firing lands on the function's timer
consumer; the query that resumes the run marks the row fired (``RunStore.lease_and_load``).
The repair sweep re-arms any row that is due but unfired (JetStream lost it in a host
crash, or NATS was down when it was armed).
"""

from __future__ import annotations

import logging

from nats.js import JetStreamContext
from psycopg_pool import AsyncConnectionPool

from ferryman_jetstream import publish_at
from ferryman_worker.common import jsonutil
from ferryman_worker.storage.checkpoints import PendingTimer

log = logging.getLogger("ferryman.timers")


async def arm(js: JetStreamContext, timers: list[PendingTimer]) -> None:
    """Publish schedules for ``timers``; a failure is logged, the sweep re-arms later."""
    for timer in timers:
        try:
            await publish_at(
                js,
                timer.function_id,
                timer.run_id,
                timer.timer_id,
                timer.fire_at,
                jsonutil.dumpb(
                    {
                        "run_id": timer.run_id,
                        "timer_id": timer.timer_id,
                        # for ferryman_timer_lateness_seconds, measured when it fires
                        "fire_at": timer.fire_at.timestamp(),
                    }
                ),
            )
        except Exception as exc:
            log.warning(
                "could not arm timer %s of run %s (%s); the repair sweep will",
                timer.timer_id,
                timer.run_id,
                exc,
            )


async def overdue(
    pool: AsyncConnectionPool, grace_seconds: float, limit: int = 5000
) -> list[PendingTimer]:
    """Timers that should have fired ``grace_seconds`` ago and have not."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT t.run_id, t.timer_id, t.function_id, t.fire_at FROM timers t "
            "JOIN runs r ON r.id = t.run_id "
            "WHERE t.fired_at IS NULL AND t.fire_at < now() - make_interval(secs => %s) "
            "AND r.status NOT IN ('COMPLETED','FAILED','CANCELLED') "
            "ORDER BY t.fire_at LIMIT %s",
            (grace_seconds, limit),
        )
        return [PendingTimer(r[0], r[1], r[2], r[3]) for r in await cur.fetchall()]
