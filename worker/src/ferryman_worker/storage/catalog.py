"""The functions workers have registered, with how their runs have gone lately.

Workers write ``functions`` when they start (``worker.Worker._register``); this module
only reads it, for ``GET /v1/functions``. Counts come from the runs of the last day
(index ``runs_function_created_id``), so the answer stays cheap however old the table is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

_STATS = """
SELECT function_id, status,
       count(*) FILTER (WHERE created_at >= now() - interval '1 hour') AS hour,
       count(*) AS day
FROM runs
WHERE created_at >= now() - interval '1 day' AND function_id = ANY(%s)
GROUP BY function_id, status
"""

_LAST = """
SELECT f.id, (SELECT r.created_at FROM runs r WHERE r.function_id = f.id
              ORDER BY r.created_at DESC, r.id DESC LIMIT 1) AS last_run_at
FROM functions f WHERE f.id = ANY(%s)
"""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _failure_rate(day: dict[str, int]) -> float | None:
    """Failed among finished runs in the last day; None when none finished."""
    finished = day.get("COMPLETED", 0) + day.get("FAILED", 0)
    return round(day.get("FAILED", 0) / finished, 4) if finished else None


async def list_functions(
    pool: AsyncConnectionPool, function_id: str | None = None
) -> list[dict[str, Any]]:
    """Every registered function (or one), with its config and last hour/day of runs."""
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        if function_id is None:
            await cur.execute("SELECT * FROM functions ORDER BY id")
        else:
            await cur.execute("SELECT * FROM functions WHERE id = %s", (function_id,))
        rows = await cur.fetchall()
        ids = [r["id"] for r in rows]
        await cur.execute(_STATS, (ids,))
        stats = await cur.fetchall()
        await cur.execute(_LAST, (ids,))
        last = {r["id"]: r["last_run_at"] for r in await cur.fetchall()}
    hour: dict[str, dict[str, int]] = {i: {} for i in ids}
    day: dict[str, dict[str, int]] = {i: {} for i in ids}
    for s in stats:
        if s["hour"]:
            hour[s["function_id"]][s["status"]] = s["hour"]
        day[s["function_id"]][s["status"]] = s["day"]
    return [
        {
            "id": r["id"],
            "app_id": r["app_id"],
            "name": r["name"],
            "config": r["config"],
            "triggers": r["config"].get("triggers", []),
            "declared_at": _iso(r.get("declared_at")),
            "updated_at": _iso(r["updated_at"]),
            "runs": {"last_hour": hour[r["id"]], "last_day": day[r["id"]]},
            "failure_rate": _failure_rate(day[r["id"]]),
            "last_run_at": _iso(last.get(r["id"])),
        }
        for r in rows
    ]
