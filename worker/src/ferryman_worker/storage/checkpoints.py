"""Checkpoints: the SDK's :class:`StepStore`, over PostgreSQL, fenced by the run's lease.

Every write carries the lease token and only lands while the run's token is still that
one. A step result is stored once (primary key run + step id): a re-delivered job finds
it in history and moves on. Timers are recorded in the same transaction as the step that
needs them and armed in JetStream after the run lets go of its lease, so a timer can never
fire into a run that is still held.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import nats.errors
import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from pydantic import TypeAdapter

from ferryman import Event
from ferryman._config import Cancel
from ferryman._runtime import NewStep, StepRecord, WaitResult, WaitSpec
from ferryman_worker.common import jsonutil, tracing
from ferryman_worker.common.ids import new_id
from ferryman_worker.storage.batching import CompletedSteps, Releases
from ferryman_worker.storage.runs import (
    LeaseLost,
    NewRun,
    RunCancelled,
    StoreUnavailable,
    insert_cancel_waits,
)
from ferryman_worker.storage.triggering import cancel_waits_of, key_of

INVOKED_EVENT = "ferryman/function.invoked"
FINISHED_EVENT = "ferryman/function.finished"

_FENCE = "EXISTS (SELECT 1 FROM runs WHERE id = %(run)s AND lease_token = %(token)s)"

_UPSERT = (
    "INSERT INTO steps (run_id, step_id, name, position, op, status, output, error, attempts,"
    " parallel, wake_at, ended_at, started_at, attempt_started_at) "
    "SELECT %(run)s, %(step)s, %(name)s, %(pos)s, %(op)s, %(status)s, %(output)s::jsonb,"
    " %(error)s::jsonb, %(attempts)s, %(parallel)s, %(wake)s,"
    " CASE WHEN %(status)s IN ('COMPLETED','FAILED') THEN now() END, %(started)s, %(started)s "
    f"WHERE {_FENCE} "
    "ON CONFLICT (run_id, step_id) DO UPDATE SET status = EXCLUDED.status,"
    " output = EXCLUDED.output, error = EXCLUDED.error, attempts = EXCLUDED.attempts,"
    " wake_at = EXCLUDED.wake_at, ended_at = EXCLUDED.ended_at,"
    " attempt_started_at = EXCLUDED.attempt_started_at "
    "WHERE steps.status NOT IN ('COMPLETED','FAILED') "
    "RETURNING (SELECT status FROM runs WHERE id = %(run)s)"
)


@contextlib.asynccontextmanager
async def _guard() -> AsyncIterator[None]:
    """Turn a database or NATS outage into StoreUnavailable, which user code cannot catch."""
    try:
        yield
    except (psycopg.Error, PoolTimeout, nats.errors.Error) as exc:
        raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc


@dataclass
class PendingTimer:
    run_id: str
    timer_id: str
    function_id: str
    fire_at: datetime


@dataclass
class RunCheckpoints:
    """One lease's view of one run's history, as the replay engine writes it."""

    pool: AsyncConnectionPool
    run_id: str
    function_id: str
    token: int
    sender: Any  # EventBus-like: ``send_events`` stores and publishes
    batcher: CompletedSteps
    releases: Releases
    timers: list[PendingTimer] = field(default_factory=list)
    jobs: list[tuple[str, str]] = field(default_factory=list)  # (function, run) to start
    sleeping: bool = False
    waiting: bool = False
    cancelled: bool = False
    sleeps: list[tuple[NewStep, datetime]] = field(default_factory=list)

    def _stop_if_cancelled(self) -> None:
        if self.cancelled:
            raise RunCancelled(self.run_id)

    def now(self) -> datetime:
        return datetime.now(UTC)

    def _params(self, step: NewStep, status: str, **values: Any) -> dict[str, Any]:
        return {
            "run": self.run_id, "token": self.token, "step": step.id, "name": step.name,
            "pos": step.position, "op": step.op, "status": status, "parallel": step.parallel,
            "output": values.get("output"), "error": values.get("error"),
            "attempts": step.attempt + 1, "wake": values.get("wake"),
            "started": step.started_at,
        }  # fmt: skip

    async def _write(self, conn: AsyncConnection[Any], params: dict[str, Any]) -> None:
        cur = await conn.execute(_UPSERT, params)
        row = await cur.fetchone()
        if row is None:
            await self._explain_refusal(conn, params["step"])
        elif row[0] == "CANCELLED":
            # The step that was executing finished and is kept; nothing after it runs.
            self.cancelled = True

    async def _explain_refusal(self, conn: AsyncConnection[Any], step_id: str) -> None:
        cur = await conn.execute("SELECT lease_token FROM runs WHERE id = %s", (self.run_id,))
        row = await cur.fetchone()
        if row is None or row[0] != self.token:
            raise LeaseLost(f"run {self.run_id}: lease {self.token} was taken over")
        # Otherwise the step was already stored by an earlier delivery: keep that result.

    async def complete_step(self, step: NewStep, output: Any, output_json: str) -> None:
        params = self._params(step, "COMPLETED", output=output_json)
        async with _guard():
            status = await self.batcher.write(params)
            if status is None:
                async with self.pool.connection() as conn:
                    await self._explain_refusal(conn, step.id)
            elif status == "CANCELLED":
                self.cancelled = True
        self._stop_if_cancelled()

    async def fail_step(self, step: NewStep, error: dict[str, Any]) -> None:
        async with _guard(), self.pool.connection() as conn, conn.transaction():
            await self._write(conn, self._params(step, "FAILED", error=jsonutil.dumps(error)))
            await self._attempt(conn, step, error)
        self._stop_if_cancelled()

    async def retry_step(self, step: NewStep, error: dict[str, Any], at: datetime) -> None:
        timer_id = f"retry-{step.id}-{step.attempt + 1}"
        async with _guard(), self.pool.connection() as conn, conn.transaction():
            await self._write(conn, self._params(step, "RETRYING", error=jsonutil.dumps(error)))
            await self._attempt(conn, step, error, at)
            await self._timer(conn, timer_id, at)

    async def sleep_step(self, step: NewStep, until: datetime) -> None:
        # No write yet: the sleep is recorded by the statement that releases the run
        # (see ``release``). A crash before that replays to this step and sleeps afresh.
        self.sleeps.append((step, until))
        self.timers.append(PendingTimer(self.run_id, f"sleep-{step.id}", self.function_id, until))
        self.sleeping = True

    async def release(
        self, status: str, *, attempt: int | None = None, error: dict[str, Any] | None = None
    ) -> bool:
        """Let go of the run (it continues later), recording its sleeps, in one statement.

        False when the run is no longer ours (cancelled, or taken over): then nothing is
        written and no timer is armed.
        """
        async with _guard():
            released = bool(await self.releases.write({
                "run": self.run_id, "token": self.token, "status": status,
                "attempt": attempt, "error": jsonutil.dumps(error) if error else None,
                "sleeps": [{"step": s.id, "name": s.name, "pos": s.position,
                            "par": s.parallel, "wake": until} for s, until in self.sleeps],
            }))  # fmt: skip
        if not released:
            self.timers.clear()
            self.jobs.clear()
        return released

    async def wake_step(self, step: StepRecord) -> None:
        async with _guard(), self.pool.connection() as conn:
            await conn.execute(
                "UPDATE steps SET status = 'COMPLETED', output = 'null', ended_at = now() "
                f"WHERE run_id = %(run)s AND step_id = %(step)s AND status = 'SLEEPING' "
                f"AND {_FENCE}",
                {"run": self.run_id, "step": step.id, "token": self.token},
            )

    async def send_events(self, events: list[Event]) -> list[str]:
        async with _guard():
            ids: list[str] = await self.sender.send(events)
        return ids

    async def _attempt(
        self,
        conn: AsyncConnection[Any],
        step: NewStep,
        error: dict[str, Any],
        retry_at: datetime | None = None,
    ) -> None:
        await conn.execute(
            "INSERT INTO step_attempts (run_id, step_id, attempt, error, started_at, retry_at) "
            "VALUES (%s, %s, %s, %s::jsonb, %s, %s) ON CONFLICT DO NOTHING",
            (self.run_id, step.id, step.attempt, jsonutil.dumps(error), step.started_at, retry_at),
        )

    async def _timer(self, conn: AsyncConnection[Any], timer_id: str, at: datetime) -> None:
        await conn.execute(
            "INSERT INTO timers (run_id, timer_id, function_id, fire_at) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (run_id, timer_id) DO UPDATE SET fire_at = EXCLUDED.fire_at, "
            "fired_at = NULL",
            (self.run_id, timer_id, self.function_id, at),
        )
        self.timers.append(PendingTimer(self.run_id, timer_id, self.function_id, at))

    # -- waiting -------------------------------------------------------------------------

    def wait_id(self, step_id: str) -> str:
        return f"{self.run_id}/{step_id}"

    async def wait_step(self, step: NewStep, spec: WaitSpec) -> None:
        async with _guard(), self.pool.connection() as conn, conn.transaction():
            await self._write(conn, self._params(step, "WAITING", wake=spec.timeout_at))
            await self._insert_wait(
                conn,
                step.id,
                "step",
                spec.event,
                spec.match_path,
                spec.match_value,
                spec.expression,
                spec.trigger,
                spec.timeout_at,
            )
            if spec.timeout_at is not None:
                await self._timer(conn, f"wait-{step.id}", spec.timeout_at)
        await self.sender.announce_waits([(spec.event, ".".join(spec.match_path or []))])
        self._stop_if_cancelled()
        self.waiting = True

    async def invoke_step(
        self, step: NewStep, function_id: str, data: dict[str, Any], timeout_at: datetime | None
    ) -> None:
        from ferryman.errors import NonRetriableError

        child_event = f"invoke:{self.run_id}:{step.id}"[:256]
        child_run = new_id()
        payload = {
            **data,
            "_ferryman": {
                "parent_run_id": self.run_id,
                "step_id": step.id,
                "function_id": function_id,
            },
        }
        cancels: list[dict[str, Any]] = []
        async with _guard(), self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute("SELECT config FROM functions WHERE id = %s", (function_id,))
            found = await cur.fetchone()
            if found is None:
                raise NonRetriableError(
                    f"step {step.id!r} invokes {function_id!r}, which no worker has registered; "
                    "check the id (it is '<app_id>-<function id>')"
                )
            # The child is started as its trigger would start it: keyed by its idempotency
            # expression and armed with its cancel_on waits (its config is in the table:
            # it may be hosted by another worker).
            stored = found[0]
            event = Event(name=INVOKED_EVENT, data=payload, id=child_event)
            key = key_of(function_id, stored.get("idempotency"), event)
            cancels = cancel_waits_of(
                [_stored_cancel(c) for c in stored.get("cancel_on", [])], event
            )
            await self._write(conn, self._params(step, "WAITING", wake=timeout_at))
            await conn.execute(
                "INSERT INTO events (id, name, data, ts) VALUES (%s, %s, %s::jsonb, "
                "(extract(epoch FROM now()) * 1000)::bigint) ON CONFLICT (id) DO NOTHING",
                (child_event, INVOKED_EVENT, jsonutil.dumps(payload)),
            )
            cur = await conn.execute(
                "INSERT INTO run_keys (function_id, key, run_id, expires_at) "
                "VALUES (%s, %s, %s, now() + interval '24 hours') "
                "ON CONFLICT (function_id, key) DO UPDATE "
                "SET run_id = EXCLUDED.run_id, expires_at = EXCLUDED.expires_at "
                "WHERE run_keys.expires_at < now() RETURNING run_id",
                (function_id, key, child_run),
            )
            if await cur.fetchone() is not None:
                # Traced: the invoked run is a child of this run's root span.
                parent = None if tracing.tracer is None else tracing.current_traceparent()
                await conn.execute(
                    "INSERT INTO runs (id, function_id, event_id, event_ids, status, traceparent) "
                    "VALUES (%s, %s, %s, %s, 'QUEUED', %s)",
                    (child_run, function_id, child_event, [child_event], parent),
                )
                await insert_cancel_waits(
                    conn, [NewRun(child_run, function_id, key, [child_event], cancels=cancels)]
                )
            else:
                cur = await conn.execute(
                    "SELECT run_id FROM run_keys WHERE function_id = %s AND key = %s",
                    (function_id, key),
                )
                child_run = (await cur.fetchone() or [child_run])[0]
                cancels = []
            await self._insert_wait(
                conn,
                step.id,
                "invoke",
                FINISHED_EVENT,
                ["run_id"],
                child_run,
                None,
                None,
                timeout_at,
            )
            if timeout_at is not None:
                await self._timer(conn, f"wait-{step.id}", timeout_at)
        await self.sender.announce_waits(
            [(FINISHED_EVENT, "run_id")]
            + [(c["event"], ".".join(c["path"] or [])) for c in cancels]
        )
        self._stop_if_cancelled()
        self.jobs.append((function_id, child_run))
        self.waiting = True

    async def _insert_wait(
        self,
        conn: AsyncConnection[Any],
        step_id: str,
        kind: str,
        event: str,
        path: list[str] | None,
        value: Any,
        expression: str | None,
        trigger: dict[str, Any] | None,
        timeout_at: datetime | None,
    ) -> None:
        await conn.execute(
            "INSERT INTO waits (id, kind, run_id, step_id, function_id, event_name, match_path,"
            " match_value, expression, trigger_event, timeout_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s::jsonb, %s) "
            "ON CONFLICT (id) DO NOTHING",
            (
                self.wait_id(step_id),
                kind,
                self.run_id,
                step_id,
                self.function_id,
                event,
                path,
                None if path is None else jsonutil.dumps(value),
                expression,
                None if trigger is None else jsonutil.dumps(trigger),
                timeout_at,
            ),
        )

    async def check_wait(self, step: StepRecord) -> WaitResult:
        async with _guard(), self.pool.connection() as conn:
            await conn.execute(
                "UPDATE waits SET resolved_at = now() WHERE id = %s AND resolved_at IS NULL "
                "AND timeout_at <= now()",
                (self.wait_id(step.id),),
            )
            cur = await conn.execute(
                "SELECT resolved_at, event FROM waits WHERE id = %s", (self.wait_id(step.id),)
            )
            row = await cur.fetchone()
        if row is None or row[0] is None:
            return WaitResult("pending")
        return WaitResult("event", row[1]) if row[1] is not None else WaitResult("timeout")

    async def resolve_step(
        self, step: StepRecord, output: Any, output_json: str, error: dict[str, Any] | None
    ) -> None:
        async with _guard(), self.pool.connection() as conn:
            await conn.execute(
                "UPDATE steps SET status = %(status)s, output = %(output)s::jsonb, "
                "error = %(error)s::jsonb, ended_at = now() "
                "WHERE run_id = %(run)s AND step_id = %(step)s AND status = 'WAITING' "
                f"AND {_FENCE}",
                {
                    "status": "FAILED" if error else "COMPLETED",
                    "output": output_json,
                    "error": jsonutil.dumps(error) if error else None,
                    "run": self.run_id,
                    "step": step.id,
                    "token": self.token,
                },
            )

    async def run_timer(self, timer_id: str, at: datetime) -> None:
        """A timer for the run itself (function-level retry)."""
        async with self.pool.connection() as conn:
            await self._timer(conn, timer_id, at)


def _stored_cancel(stored: dict[str, Any]) -> Cancel:
    """A ``cancel_on`` entry as the functions table keeps it (timeouts as ISO 8601)."""
    timeout = stored.get("timeout")
    return Cancel.model_validate(
        {**stored, "timeout": TypeAdapter(timedelta).validate_python(timeout) if timeout else None}
    )
