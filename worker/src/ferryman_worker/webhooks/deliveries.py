"""The ``webhook_deliveries`` table: the one module that writes and reads it."""

from __future__ import annotations

import base64
import time
from datetime import datetime, timedelta
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from ferryman_worker.common import jsonutil

ACCEPTED = "ACCEPTED"
TRANSFORM_FAILED = "TRANSFORM_FAILED"
_PRUNE_EVERY = 60.0


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _body_view(raw: bytes) -> dict[str, Any]:
    try:
        return {"body": raw.decode(), "body_encoding": "utf-8"}
    except UnicodeDecodeError:
        return {"body": base64.b64encode(raw).decode(), "body_encoding": "base64"}


def view(row: dict[str, Any]) -> dict[str, Any]:
    """A delivery as the REST API shows it."""
    return {
        "id": row["id"], "webhook": row["webhook"], "received_at": _iso(row["received_at"]),
        "content_type": row["content_type"], "headers": row["headers"], "query": row["query"],
        **_body_view(bytes(row["body"])), "verification": row["verification"],
        "status": row["status"], "output": row["output"], "event_ids": row["event_ids"],
        "error": row["error"], "reruns": row["reruns"], "updated_at": _iso(row["updated_at"]),
    }  # fmt: skip


class Deliveries:
    def __init__(self, pool: AsyncConnectionPool, retention: timedelta) -> None:
        self.pool = pool
        self.retention = retention
        self._pruned = 0.0

    async def record(self, delivery: dict[str, Any]) -> None:
        """Insert one delivery (``id, webhook, content_type, headers, query, body,
        verification, status, output, event_ids, error``)."""
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO webhook_deliveries (id, webhook, content_type, headers, query, body,"
                " verification, status, output, event_ids, error)"
                " VALUES (%s, %s, %s, %s::jsonb, %s::jsonb, %s, %s, %s, %s::jsonb, %s, %s)",
                (
                    delivery["id"], delivery["webhook"], delivery["content_type"],
                    jsonutil.dumps(delivery["headers"]), jsonutil.dumps(delivery["query"]),
                    delivery["body"], delivery["verification"], delivery["status"],
                    None if delivery["output"] is None else jsonutil.dumps(delivery["output"]),
                    delivery["event_ids"], delivery["error"],
                ),
            )  # fmt: skip
        await self._prune_now_and_then()

    async def rerun_result(
        self, delivery_id: str, status: str, output: Any, event_ids: list[str], error: str | None
    ) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE webhook_deliveries SET status = %s, output = %s::jsonb, event_ids = %s,"
                " error = %s, reruns = reruns + 1, updated_at = now() WHERE id = %s",
                (
                    status, None if output is None else jsonutil.dumps(output), event_ids,
                    error, delivery_id,
                ),
            )  # fmt: skip

    async def get(self, webhook: str, delivery_id: str) -> dict[str, Any] | None:
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "SELECT * FROM webhook_deliveries WHERE webhook = %s AND id = %s",
                (webhook, delivery_id),
            )
            return await cur.fetchone()

    async def page(
        self, webhook: str, limit: int, cursor: str | None, status: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first; ``cursor`` is the last id of the previous page (ids sort by time)."""
        sql = "SELECT * FROM webhook_deliveries WHERE webhook = %s"
        params: list[Any] = [webhook]
        if status:
            sql += " AND status = %s"
            params.append(status)
        if cursor:
            sql += " AND id < %s"
            params.append(cursor)
        sql += " ORDER BY id DESC LIMIT %s"
        params.append(limit + 1)
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql.encode(), params)
            rows = await cur.fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        return [view(r) for r in rows], (rows[-1]["id"] if more and rows else None)

    async def prune(self) -> int:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM webhook_deliveries WHERE received_at < now() - %s", (self.retention,)
            )
            return cur.rowcount

    async def _prune_now_and_then(self) -> None:
        # Deleting on the write path, at most once a minute, needs no background task.
        if time.monotonic() - self._pruned > _PRUNE_EVERY:
            self._pruned = time.monotonic()
            await self.prune()
