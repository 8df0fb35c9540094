"""Run rows: creation (idempotent per function and key), leases with fencing, endings.

A run is advanced by one worker at a time. :meth:`RunStore.lease` hands out the run with
a fencing token that every checkpoint must present; a worker that lost its lease (it
stalled past the expiry and another worker took over) finds its writes rejected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from ferryman import Event
from ferryman._runtime import StepRecord
from ferryman_worker.common import jsonutil

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
    cancels: list[dict[str, Any]] = field(default_factory=list)  # cancel_on waits
    traceparent: str | None = None  # the trigger event's trace context (tracing.py)


class LeaseLost(BaseException):
    """Another worker holds the run now; this worker must drop it without writing."""


class RunCancelled(BaseException):
    """The run was cancelled while this worker advanced it; stop after the current step."""


class StoreUnavailable(BaseException):
    """PostgreSQL or NATS failed under a checkpoint; the job is retried, the user never sees it."""


class RunStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        from ferryman_worker.storage.batching import Finishes, Leases

        self.pool = pool
        # Resumes and endings go through group commits: one statement for many runs.
        self.leases = Leases(pool)
        self.finishes = Finishes(pool)

    async def create(
        self, runs: list[NewRun], owner: str, lease_seconds: float
    ) -> list[tuple[str, bool]]:
        """Create runs, already leased to ``owner`` (token 1), in a few statements.

        For a key already used within 24 h the existing run is returned instead.
        Returns ``(run_id, created)`` per input, in order.
        """
        first: dict[tuple[str, str], NewRun] = {}
        for run in runs:
            first.setdefault((run.function_id, run.key), run)
        unique = list(first.values())
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "INSERT INTO run_keys (function_id, key, run_id, expires_at) "
                f"SELECT f, k, r, now() + interval '{KEY_TTL}' "
                "FROM unnest(%s::text[], %s::text[], %s::text[]) AS t(f, k, r) "
                "ON CONFLICT (function_id, key) DO UPDATE "
                "SET run_id = EXCLUDED.run_id, expires_at = EXCLUDED.expires_at "
                "WHERE run_keys.expires_at < now() RETURNING run_id",
                (
                    [r.function_id for r in unique],
                    [r.key for r in unique],
                    [r.run_id for r in unique],
                ),
            )
            created = {row[0] for row in await cur.fetchall()}
            fresh = [r for r in unique if r.run_id in created]
            if fresh:
                await conn.execute(
                    "INSERT INTO runs (id, function_id, event_id, event_ids, status, "
                    "lease_owner, lease_token, lease_expires, started_at, traceparent) "
                    "SELECT id, f, e, ARRAY[e], 'RUNNING', %s, 1, "
                    "now() + make_interval(secs => %s), now(), tp "
                    "FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) "
                    "AS t(id, f, e, tp)",
                    (
                        owner,
                        lease_seconds,
                        [r.run_id for r in fresh],
                        [r.function_id for r in fresh],
                        [r.event_ids[0] for r in fresh],
                        [r.traceparent for r in fresh],
                    ),
                )
                await self._insert_cancel_waits(conn, fresh)
            existing: dict[tuple[str, str], str] = {}
            stale = [r for r in unique if r.run_id not in created]
            if stale:
                cur = await conn.execute(
                    "SELECT k.function_id, k.key, k.run_id FROM run_keys k "
                    "JOIN unnest(%s::text[], %s::text[]) AS t(f, k2) "
                    "ON k.function_id = t.f AND k.key = t.k2",
                    ([r.function_id for r in stale], [r.key for r in stale]),
                )
                existing = {(row[0], row[1]): row[2] for row in await cur.fetchall()}
        results = []
        for run in runs:
            owner_run = first[(run.function_id, run.key)]
            if owner_run is run and run.run_id in created:
                results.append((run.run_id, True))
            else:
                key = (run.function_id, run.key)
                results.append((existing.get(key, owner_run.run_id), False))
        return results

    async def _insert_cancel_waits(self, conn: Any, runs: list[NewRun]) -> None:
        await insert_cancel_waits(conn, runs)

    async def lease_and_load(
        self, run_id: str, owner: str, seconds: float, timer_id: str | None = None
    ) -> tuple[Lease, list[StepRecord], list[Event]] | None:
        """Take the run and load what a pass needs, in one round trip.

        Also marks ``timer_id`` fired and completes sleeps whose time has come.
        """
        row = await self.leases.write(
            {"run": run_id, "timer": timer_id, "owner": owner, "secs": seconds}
        )
        if row is None:
            return None
        _, function_id, token, attempt, event_ids, status, steps, events, woken = row
        history = [
            StepRecord(
                s[0],
                s[1],
                s[2],
                "COMPLETED" if s[0] in woken else s[3],
                None if s[0] in woken else s[4],
                s[5],
                s[6],
                datetime.fromisoformat(s[7]) if s[7] else None,
                s[8],
                s[9],
            )
            for s in steps
        ]
        by_id = {e[0]: Event(id=e[0], name=e[1], data=e[2], ts=e[3], user=e[4]) for e in events}
        loaded = [by_id[i] for i in event_ids if i in by_id]
        return Lease(run_id, function_id, token, attempt, list(event_ids), status), history, loaded

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
        events: list[Event],
    ) -> dict[str, datetime] | None:
        """End the run and store ``events`` (its internal events) in one statement.

        Returns when each event was received, or None when the run was not ours to end.
        """
        received: dict[str, datetime] | None = await self.finishes.write({
            "run": run_id, "token": token, "status": status, "output": output_json,
            "error": jsonutil.dumps(error) if error else None, "events": events,
        })  # fmt: skip
        return received

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
                "updated_at = now() WHERE id = %s AND lease_token = %s "
                "AND status NOT IN ('COMPLETED','FAILED','CANCELLED')",
                (status, attempt, jsonutil.dumps(error) if error else None, run_id, token),
            )
            return cur.rowcount == 1

    async def stalled(self, older_than_seconds: float, limit: int = 1000) -> list[tuple[str, str]]:
        """Runs that should be moving but nobody holds: ``(run_id, function_id)``."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id, function_id FROM runs "
                "WHERE status IN ('QUEUED','RUNNING','SLEEPING') "
                "AND updated_at < now() - make_interval(secs => %s) "
                "AND (lease_expires IS NULL OR lease_expires < now()) "
                "AND NOT EXISTS (SELECT 1 FROM timers t WHERE t.run_id = runs.id "
                "                AND t.fired_at IS NULL) "
                "ORDER BY updated_at LIMIT %s",
                (older_than_seconds, limit),
            )
            return [(r[0], r[1]) for r in await cur.fetchall()]

    async def resolved_waiting(
        self, older_than_seconds: float, limit: int = 1000
    ) -> list[tuple[str, str]]:
        """Waiting runs whose wait was resolved but that nobody resumed (a crash in between)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT r.id, r.function_id FROM runs r WHERE r.status = 'WAITING' "
                "AND r.updated_at < now() - make_interval(secs => %s) "
                "AND (r.lease_expires IS NULL OR r.lease_expires < now()) "
                "AND EXISTS (SELECT 1 FROM waits w JOIN steps s ON s.run_id = w.run_id "
                "  AND s.step_id = w.step_id AND s.status = 'WAITING' "
                "  WHERE w.run_id = r.id AND w.kind <> 'cancel' AND w.resolved_at IS NOT NULL "
                "  AND w.resolved_at < now() - make_interval(secs => %s)) "
                "LIMIT %s",
                (older_than_seconds, older_than_seconds, limit),
            )
            return [(row[0], row[1]) for row in await cur.fetchall()]

    async def touch(self, run_ids: list[str]) -> None:
        async with self.pool.connection() as conn:
            await conn.execute("UPDATE runs SET updated_at = now() WHERE id = ANY(%s)", (run_ids,))


async def insert_cancel_waits(conn: Any, runs: list[NewRun]) -> None:
    """The cancel_on waits new runs start with."""
    rows = [(f"{run.run_id}/cancel/{n}", run, c) for run in runs for n, c in enumerate(run.cancels)]
    if not rows:
        return
    await conn.execute(
        "INSERT INTO waits (id, kind, run_id, function_id, event_name, match_path, "
        "match_value, expression, trigger_event, timeout_at) "
        "SELECT id, 'cancel', r, f, e, "
        "CASE WHEN p IS NULL THEN NULL ELSE string_to_array(p, '.') END, v, x, t, "
        "now() + make_interval(secs => s) "
        "FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], "
        "%s::jsonb[], %s::text[], %s::jsonb[], %s::float8[]) AS u(id, r, f, e, p, v, x, t, s)",
        (
            [w for w, _, _ in rows],
            [run.run_id for _, run, _ in rows],
            [run.function_id for _, run, _ in rows],
            [c["event"] for _, _, c in rows],
            [".".join(c["path"]) if c["path"] else None for _, _, c in rows],
            [None if c["path"] is None else jsonutil.dumps(c["value"]) for _, _, c in rows],
            [c["if"] for _, _, c in rows],
            [jsonutil.dumps(c["trigger"]) for _, _, c in rows],
            [c["timeout"] for _, _, c in rows],
        ),
    )
