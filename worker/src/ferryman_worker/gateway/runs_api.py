"""``GET /v1/runs/count``: how many runs a filter selects, and how many an action would touch.

The console's bulk cancel and replay confirm with this number before they act
("Cancel 37 runs?"). ``action=cancel`` counts the unfinished runs (what
``POST /v1/runs/cancel`` cancels), ``action=replay`` the FAILED or CANCELLED ones (what
``POST /v1/runs/replay`` replays); without ``action``, every run the filter selects.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ferryman_worker.storage import queries

if TYPE_CHECKING:
    from ferryman_worker.gateway.app import Gateway

_ACTIONS = {
    "cancel": "status NOT IN ('COMPLETED','FAILED','CANCELLED')",
    "replay": "status IN ('FAILED','CANCELLED')",
}
_FILTERS = {"function_id", "status", "after", "before", "event_id", "action"}


def _bad(message: str) -> Response:
    return JSONResponse({"error": message, "status": 400}, status_code=400)


def _time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} must be an ISO 8601 time, like 2026-01-31T12:00:00Z") from None


class RunsApi:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def count(self, request: Request) -> Response:
        q = request.query_params
        unknown = set(q) - _FILTERS
        if unknown:
            allowed = ", ".join(sorted(_FILTERS))
            return _bad(f"unknown parameter(s) {sorted(unknown)}; use {allowed}")
        action = q.get("action")
        if action is not None and action not in _ACTIONS:
            return _bad("action must be cancel or replay")
        status = q.get("status") or None
        if status is not None and status not in queries.STATUSES:
            return _bad(f"status must be one of {', '.join(queries.STATUSES)}")
        try:
            where, params = queries.run_filter(
                function_id=q.get("function_id") or None,
                status=status,
                after=_time(q.get("after"), "after"),
                before=_time(q.get("before"), "before"),
                event_id=q.get("event_id") or None,
            )
        except ValueError as exc:
            return _bad(str(exc))
        if action is not None:
            where = f"{where} AND {_ACTIONS[action]}"
        async with self.gateway.pool.connection() as conn:
            cur = await conn.execute(f"SELECT count(*) FROM runs WHERE {where}".encode(), params)
            row = await cur.fetchone()
        return JSONResponse({"data": {"count": row[0] if row else 0}})
