"""Cron triggers: a tick becomes a run with the event ``ferryman/scheduled.timer``.

JetStream's cron schedules deliver the ticks. Each tick is keyed by its scheduled minute,
so a duplicate delivery starts no second run. On start-up, a worker compares the newest
tick the schedule should have produced with the last one recorded: if ticks were missed
while everything was down, it fires once for the newest, not once per missed tick.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from croniter import croniter
from psycopg_pool import AsyncConnectionPool

from ferryman import CronTrigger

SCHEDULED_EVENT = "ferryman/scheduled.timer"


def latest_tick(trigger: CronTrigger, now: datetime) -> datetime:
    """The newest scheduled time at or before ``now`` (UTC)."""
    local = now.astimezone(ZoneInfo(trigger.timezone))
    previous: datetime = croniter(trigger.cron, local).get_prev(datetime)
    if croniter.match(trigger.cron, local.replace(second=0, microsecond=0)):
        previous = local.replace(second=0, microsecond=0)
    return previous.astimezone(UTC)


def latest_of(triggers: list[CronTrigger], now: datetime) -> datetime:
    return max(latest_tick(t, now) for t in triggers)


async def claim_tick(
    pool: AsyncConnectionPool, function_id: str, tick: datetime, *, first_seen_counts: bool
) -> bool:
    """Advance the function's last tick to ``tick``; True when this tick is new.

    ``first_seen_counts``: a function never seen before starts counting from now
    (False: record the tick without firing, so deploying a function fires nothing).
    """
    async with pool.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO cron_ticks (function_id, last_tick) VALUES (%s, %s) "
            "ON CONFLICT (function_id) DO UPDATE SET last_tick = EXCLUDED.last_tick "
            "WHERE cron_ticks.last_tick < EXCLUDED.last_tick "
            "RETURNING (xmax = 0) AS inserted",
            (function_id, tick),
        )
        row = await cur.fetchone()
    if row is None:
        return False
    inserted = bool(row[0])
    return first_seen_counts or not inserted


def tick_key(tick: datetime) -> str:
    return "cron:" + tick.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
