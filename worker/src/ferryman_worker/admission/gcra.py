"""GCRA (generic cell rate algorithm) over the ``flow_gcra`` table, for throttle and rate
limit. One row per function, rule and key holds the theoretical arrival time (TAT); each
admitted arrival pushes it on by the emission interval ``period / limit``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any


async def reserve(
    conn: Any,
    function_id: str,
    rule: str,
    key: str,
    period: timedelta,
    limit: int,
    tolerance: int,
    *,
    delay: bool,
) -> datetime | None:
    """Reserve the next slot: returns when it starts (now, or later when ``delay``), or
    None when it would have to wait and ``delay`` is false (nothing is reserved then).

    ``tolerance`` is how many arrivals may come back to back before the spacing applies.
    The caller's transaction serialises arrivals on the row (SELECT ... FOR UPDATE).
    """
    interval = period / limit
    cur = await conn.execute(
        "INSERT INTO flow_gcra (function_id, rule, key, tat) VALUES (%s, %s, %s, now()) "
        "ON CONFLICT (function_id, rule, key) DO UPDATE SET tat = flow_gcra.tat "
        "RETURNING greatest(tat, now()), now()",
        (function_id, rule, key),
    )
    tat, now = await cur.fetchone()
    start = max(now, tat - interval * (tolerance - 1))
    if start > now and not delay:
        return None
    await conn.execute(
        "UPDATE flow_gcra SET tat = %s WHERE function_id = %s AND rule = %s AND key = %s",
        (tat + interval, function_id, rule, key),
    )
    return start  # type: ignore[no-any-return]
