"""Reads for the REST API and the CLI: runs with their steps, pages of runs, events."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from ferryman_worker.storage import timelines

STATUSES = ("QUEUED", "RUNNING", "SLEEPING", "WAITING", "COMPLETED", "FAILED", "CANCELLED")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _run(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": row["id"], "function_id": row["function_id"], "status": row["status"],
        "event_id": row["event_id"], "output": row["output"], "error": row["error"],
        "attempt": row["attempt"], "replay_of": row["replay_of"],
        "created_at": _iso(row["created_at"]), "started_at": _iso(row["started_at"]),
        "ended_at": _iso(row["ended_at"]),
        # why flow control holds a QUEUED run ("concurrency key acme full (2/2)"), else None
        "reason": row.get("reason") if row["status"] == "QUEUED" else None,
        # the last reason flow control gave, kept once the run started: why it waited
        "held_reason": row.get("reason"),
    }  # fmt: skip


async def get_run(pool: AsyncConnectionPool, run_id: str) -> dict[str, Any] | None:
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM runs WHERE id = %s", (run_id,))
        row = await cur.fetchone()
        if row is None:
            return None
        await cur.execute("SELECT * FROM steps WHERE run_id = %s ORDER BY position", (run_id,))
        steps = await cur.fetchall()
        run = _run(row)
        run["steps"] = [
            {
                "id": s["step_id"],
                "name": s["name"],
                "op": s["op"],
                "status": s["status"],
                "attempts": s["attempts"],
                "output": s["output"],
                "error": s["error"],
                "wake_at": _iso(s["wake_at"]),
                "started_at": _iso(s["started_at"]),
                "ended_at": _iso(s["ended_at"]),
            }
            for s in steps
        ]
        await timelines.enrich(cur, run, row, steps)
    return run


def encode_cursor(created_at: datetime, run_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{run_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        stamp, run_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        if "\x00" in run_id:
            raise ValueError(run_id)
        return datetime.fromisoformat(stamp), run_id
    except (ValueError, UnicodeDecodeError):
        raise ValueError("cursor is not one this API returned; start again without it") from None


def run_filter(
    *,
    run_ids: list[str] | None = None,
    function_id: str | None = None,
    status: str | None = None,
    after: datetime | None = None,
    before: datetime | None = None,
    event_id: str | None = None,
) -> tuple[str, list[Any]]:
    """A WHERE clause over ``runs`` from the filter every bulk operation takes."""
    where, params = ["true"], []  # type: tuple[list[str], list[Any]]
    for clause, value in (
        ("id = ANY(%s)", run_ids),
        ("function_id = %s", function_id),
        ("status = %s", status),
        ("created_at >= %s", after),
        ("created_at < %s", before),
        ("event_id = %s", event_id),  # the (first) triggering event: indexed
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    return " AND ".join(where), params


async def list_runs(
    pool: AsyncConnectionPool,
    *,
    function_id: str | None = None,
    status: str | None = None,
    after: datetime | None = None,
    before: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
    event_id: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of runs, newest first, and the cursor of the next page (None at the end)."""
    clause, params = run_filter(
        function_id=function_id or None, status=status or None, after=after, before=before,
        event_id=event_id or None,
    )  # fmt: skip
    where = [clause]
    if cursor:
        stamp, run_id = decode_cursor(cursor)
        where.append("(created_at, id) < (%s, %s)")
        params.extend([stamp, run_id])
    sql = (
        f"SELECT * FROM runs WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC LIMIT %s"
    )
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql.encode(), [*params, limit + 1])
        rows = await cur.fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if more else None
    return [_run(r) for r in rows], next_cursor


async def event_runs(pool: AsyncConnectionPool, event_id: str) -> list[dict[str, Any]] | None:
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT 1 FROM events WHERE id = %s", (event_id,))
        if await cur.fetchone() is None:
            return None
        await cur.execute(
            "SELECT * FROM runs WHERE %s = ANY(event_ids) ORDER BY created_at", (event_id,)
        )
        return [_run(r) for r in await cur.fetchall()]


async def event_skips(pool: AsyncConnectionPool, event_id: str) -> list[dict[str, Any]]:
    """The functions whose flow control started no run for the event, with the rule
    (``rate_limit``, ``singleton``, or ``debounce`` when a later event replaced it)."""
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            # 'batch' records an event folded into a batch run: that run is listed, not a skip
            "SELECT * FROM skipped_events WHERE event_id = %s AND rule <> 'batch' ORDER BY at",
            (event_id,),
        )
        return [
            {"function_id": r["function_id"], "skipped": r["rule"], "run_id": r["run_id"],
             "at": _iso(r["at"])}
            for r in await cur.fetchall()
        ]  # fmt: skip


async def list_events(
    pool: AsyncConnectionPool, name: str | None, limit: int
) -> list[dict[str, Any]]:
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        if name:
            await cur.execute(
                "SELECT * FROM events WHERE name = %s ORDER BY received_at DESC LIMIT %s",
                (name, limit),
            )
        else:
            await cur.execute("SELECT * FROM events ORDER BY received_at DESC LIMIT %s", (limit,))
        events = [
            {
                "id": r["id"],
                "name": r["name"],
                "data": r["data"],
                "ts": r["ts"],
                "received_at": _iso(r["received_at"]),
                "runs": [],
                "skipped": [],
            }
            for r in await cur.fetchall()
        ]
        # The runs each event started (as its first trigger event) and the functions whose
        # flow control skipped it, in two indexed queries; GET /v1/events/{id}/runs has the
        # full answer, batches included.
        await cur.execute(
            "SELECT id, function_id, status, event_id FROM runs WHERE event_id = ANY(%s) "
            "ORDER BY created_at",
            ([e["id"] for e in events],),
        )
        by_event = {e["id"]: e for e in events}
        for r in await cur.fetchall():
            by_event[r["event_id"]]["runs"].append(
                {"run_id": r["id"], "function_id": r["function_id"], "status": r["status"]}
            )
        await cur.execute(
            "SELECT event_id, function_id, rule FROM skipped_events "
            "WHERE event_id = ANY(%s) AND rule <> 'batch' ORDER BY at",
            (list(by_event),),
        )
        for r in await cur.fetchall():
            by_event[r["event_id"]]["skipped"].append(
                {"function_id": r["function_id"], "skipped": r["rule"]}
            )
        return events
