"""Run rows: creation (idempotent per function and key), leases with fencing, endings.

A run is advanced by one worker at a time. :meth:`RunStore.lease` hands out the run with
a fencing token that every checkpoint must present; a worker that lost its lease (it
stalled past the expiry and another worker took over) finds its writes rejected.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from ferryman_worker import jsonutil

TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")
KEY_TTL = "24 hours"


@dataclass
class Lease:
    run_id: str
    function_id: str
    token: int
    attempt: int
    event_ids: list[str]
    status: str


@dataclass
class NewRun:
    run_id: str
    function_id: str
    key: str
    event_ids: list[str]


class LeaseLost(BaseException):
    """Another worker holds the run now; this worker must drop it without writing."""


class StoreUnavailable(BaseException):
    """PostgreSQL or NATS failed under a checkpoint; the job is retried, the user never sees it."""


class RunStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def create(self, runs: list[NewRun]) -> list[tuple[str, bool]]:
        """Create runs; for a key already used within 24 h, return that run instead.

        Returns ``(run_id, created)`` per input, in order.
        """
        results: list[tuple[str, bool]] = []
        async with self.pool.connection() as conn, conn.transaction():
            for run in runs:
                cur = await conn.execute(
                    "INSERT INTO run_keys (function_id, key, run_id, expires_at) "
                    f"VALUES (%s, %s, %s, now() + interval '{KEY_TTL}') "
                    "ON CONFLICT (function_id, key) DO UPDATE "
                    "SET run_id = EXCLUDED.run_id, expires_at = EXCLUDED.expires_at "
                    "WHERE run_keys.expires_at < now() "
                    "RETURNING run_id",
                    (run.function_id, run.key, run.run_id),
                )
                row = await cur.fetchone()
                if row is None:
                    cur = await conn.execute(
                        "SELECT run_id FROM run_keys WHERE function_id = %s AND key = %s",
                        (run.function_id, run.key),
                    )
                    existing = await cur.fetchone()
                    results.append((existing[0] if existing else run.run_id, False))
                    continue
                await conn.execute(
                    "INSERT INTO runs (id, function_id, event_id, event_ids, status) "
                    "VALUES (%s, %s, %s, %s, 'QUEUED')",
                    (
                        run.run_id,
                        run.function_id,
                        run.event_ids[0] if run.event_ids else None,
                        run.event_ids,
                    ),
                )
                results.append((run.run_id, True))
        return results

    async def lease(self, run_id: str, owner: str, seconds: float) -> Lease | None:
        """Take the run if it is not finished and nobody else holds a live lease."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE runs SET lease_owner = %s, lease_token = lease_token + 1, "
                "lease_expires = now() + make_interval(secs => %s), "
                "status = CASE WHEN status IN ('QUEUED','SLEEPING') THEN 'RUNNING' ELSE status END,"
                " started_at = coalesce(started_at, now()), updated_at = now() "
                "WHERE id = %s AND status NOT IN ('COMPLETED','FAILED','CANCELLED') "
                "AND (lease_expires IS NULL OR lease_expires < now() OR lease_owner = %s) "
                "RETURNING function_id, lease_token, attempt, event_ids, status",
                (owner, seconds, run_id, owner),
            )
            row = await cur.fetchone()
        if row is None:
            return None
        return Lease(run_id, row[0], row[1], row[2], list(row[3]), row[4])

    async def renew(self, run_id: str, token: int, seconds: float) -> bool:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE runs SET lease_expires = now() + make_interval(secs => %s) "
                "WHERE id = %s AND lease_token = %s",
                (seconds, run_id, token),
            )
            return cur.rowcount == 1

    async def state(self, run_id: str) -> tuple[str, float] | None:
        """The run's status and the seconds left on its lease (0 when free)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT status, greatest(0, extract(epoch FROM lease_expires - now()))::float8 "
                "FROM runs WHERE id = %s",
                (run_id,),
            )
            row = await cur.fetchone()
        return (row[0], row[1] or 0.0) if row else None

    async def finish(
        self,
        run_id: str,
        token: int,
        status: str,
        output_json: str | None,
        error: dict[str, Any] | None,
    ) -> bool:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE runs SET status = %s, output = %s::jsonb, error = %s::jsonb, "
                "ended_at = now(), updated_at = now(), lease_owner = NULL, lease_expires = NULL "
                "WHERE id = %s AND lease_token = %s",
                (status, output_json, jsonutil.dumps(error) if error else None, run_id, token),
            )
            return cur.rowcount == 1

    async def release(
        self,
        run_id: str,
        token: int,
        status: str,
        *,
        attempt: int | None = None,
        error: dict[str, Any] | None = None,
    ) -> bool:
        """Let go of a run that will continue later (sleeping, retrying)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE runs SET status = %s, lease_owner = NULL, lease_expires = NULL, "
                "attempt = coalesce(%s, attempt), error = coalesce(%s::jsonb, error), "
                "updated_at = now() WHERE id = %s AND lease_token = %s",
                (status, attempt, jsonutil.dumps(error) if error else None, run_id, token),
            )
            return cur.rowcount == 1

    async def stalled(self, older_than_seconds: float, limit: int = 1000) -> list[tuple[str, str]]:
        """Runs that should be moving but nobody holds: ``(run_id, function_id)``."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id, function_id FROM runs WHERE status IN ('QUEUED','RUNNING') "
                "AND updated_at < now() - make_interval(secs => %s) "
                "AND (lease_expires IS NULL OR lease_expires < now()) "
                "AND NOT EXISTS (SELECT 1 FROM timers t WHERE t.run_id = runs.id "
                "                AND t.fired_at IS NULL) "
                "ORDER BY updated_at LIMIT %s",
                (older_than_seconds, limit),
            )
            return [(r[0], r[1]) for r in await cur.fetchall()]

    async def touch(self, run_ids: list[str]) -> None:
        async with self.pool.connection() as conn:
            await conn.execute("UPDATE runs SET updated_at = now() WHERE id = ANY(%s)", (run_ids,))


def parse_time(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) or value is None else None
