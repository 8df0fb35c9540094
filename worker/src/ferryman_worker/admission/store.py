"""The rows the admission stage writes: held runs, skipped events, start timers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ferryman_worker.storage.checkpoints import PendingTimer

#: The timer that wakes a run whose ``not_before`` has come (throttle, debounce, batch).
#: Re-arming it moves the one JetStream schedule (same subject), as debounce needs.
START_TIMER = "flow-start"
START_DEADLINE = "flow-timeout-start"
FINISH_DEADLINE = "flow-timeout-finish"

TERMINAL = "('COMPLETED','FAILED','CANCELLED')"

#: A run's ``reason`` from its arrival until admission decides; a decision that holds it
#: writes the real one. Admission clears only this one when the run starts: a real reason
#: stays, so a finished run can still say why it waited (``held_reason`` in the API).
ARRIVED = "queued for admission"


async def lock(conn: Any, *parts: str) -> None:
    """A transaction-level advisory lock on ``parts`` (held until commit)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 70))", ("\x1f".join(parts),)
    )


async def skip(conn: Any, event_id: str, function_id: str, rule: str, run_id: str | None) -> None:
    await conn.execute(
        "INSERT INTO skipped_events (event_id, function_id, rule, run_id) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (event_id, function_id) DO NOTHING",
        (event_id, function_id, rule, run_id),
    )


async def claim_key(conn: Any, function_id: str, key: str, run_id: str) -> str | None:
    """Tie the run key (event id or idempotency key) to ``run_id``; return the run that
    already holds it within 24 h, if one does."""
    cur = await conn.execute(
        "INSERT INTO run_keys (function_id, key, run_id, expires_at) "
        "VALUES (%s, %s, %s, now() + interval '24 hours') "
        "ON CONFLICT (function_id, key) DO UPDATE "
        "SET run_id = EXCLUDED.run_id, expires_at = EXCLUDED.expires_at "
        "WHERE run_keys.expires_at < now() RETURNING run_id",
        (function_id, key, run_id),
    )
    if await cur.fetchone() is not None:
        return None
    cur = await conn.execute(
        "SELECT run_id FROM run_keys WHERE function_id = %s AND key = %s", (function_id, key)
    )
    row = await cur.fetchone()
    return str(row[0]) if row else None


async def timer(
    conn: Any, run_id: str, timer_id: str, function_id: str, fire_at: datetime
) -> PendingTimer:
    """Record a timer (moving it when it exists); the caller arms it after commit."""
    await conn.execute(
        "INSERT INTO timers (run_id, timer_id, function_id, fire_at) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (run_id, timer_id) DO UPDATE SET fire_at = EXCLUDED.fire_at, "
        "fired_at = NULL",
        (run_id, timer_id, function_id, fire_at),
    )
    return PendingTimer(run_id, timer_id, function_id, fire_at)
