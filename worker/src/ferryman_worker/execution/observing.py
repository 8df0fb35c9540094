"""Watching steps go by: metrics, log lines around the run's checkpoints.

An interceptor in the sense of Temporal's: :class:`ObservedSteps` is the ``StepStore`` the
replay engine writes to; it forwards every call to the run's :class:`RunCheckpoints` and,
once the checkpoint is durable, records what happened — step durations and attempts,
``step failed (attempt 2/5), retrying in 2 s``, ``sleeping until``. Keeping this out of
``checkpoints.py`` leaves that module about PostgreSQL only.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from ferryman import Event
from ferryman._runtime import NewStep, StepRecord, WaitResult, WaitSpec
from ferryman_worker.common import metrics
from ferryman_worker.common.logs import seconds
from ferryman_worker.common.tracing import RunTrace
from ferryman_worker.storage.checkpoints import RunCheckpoints

log = logging.getLogger("ferryman.runs")


def _error_text(error: dict[str, Any]) -> str:
    return f"{error.get('name', 'Error')}: {error.get('message', '')}".rstrip(": ")


class ObservedSteps:
    """The run's checkpoints, observed."""

    def __init__(self, store: RunCheckpoints, trace: RunTrace | None = None) -> None:
        self.store = store
        self.trace = trace  # the run's trace, when tracing is on
        self.function_id = store.function_id
        self.run_id = store.run_id

    def _fields(self, step_id: str | None = None, attempt: int | None = None) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "function_id": self.function_id,
            "step_id": step_id,
            "attempt": attempt,
        }

    def _attempt_done(self, step: NewStep, outcome: str) -> float:
        elapsed = max(0.0, (datetime.now(UTC) - step.started_at).total_seconds())
        if step.op == "run":
            metrics.STEP_DURATION.labels(
                self.function_id, metrics.step_label(self.function_id, step.id)
            ).observe(elapsed)
            metrics.STEP_ATTEMPTS.labels(self.function_id, outcome).inc()
        return elapsed

    def now(self) -> datetime:
        return self.store.now()

    async def complete_step(self, step: NewStep, output: Any, output_json: str) -> None:
        await self.store.complete_step(step, output, output_json)
        elapsed = self._attempt_done(step, "completed")
        if self.trace is not None:
            self.trace.step_ended(step, "completed")
        log.debug(
            "run %s step %r completed in %s",
            self.run_id,
            step.id,
            seconds(elapsed),
            extra=self._fields(step.id, step.attempt + 1),
        )

    async def fail_step(self, step: NewStep, error: dict[str, Any]) -> None:
        await self.store.fail_step(step, error)
        self._attempt_done(step, "failed")
        if self.trace is not None:
            self.trace.step_ended(step, "failed", error)
        log.warning(
            "run %s step %r failed for good (attempt %d/%s): %s",
            self.run_id,
            step.id,
            step.attempt + 1,
            step.extra.get("max_attempts", "?"),
            _error_text(error),
            extra=self._fields(step.id, step.attempt + 1),
        )

    async def retry_step(self, step: NewStep, error: dict[str, Any], at: datetime) -> None:
        delay = max(0.0, (at - datetime.now(UTC)).total_seconds())  # before the commit's time
        await self.store.retry_step(step, error, at)
        self._attempt_done(step, "retrying")
        if self.trace is not None:
            self.trace.step_ended(step, "retrying", error)
        log.info(
            "run %s step %r failed (attempt %d/%s): %s; retrying in %s",
            self.run_id,
            step.id,
            step.attempt + 1,
            step.extra.get("max_attempts", "?"),
            _error_text(error),
            seconds(delay),
            extra=self._fields(step.id, step.attempt + 1),
        )

    async def sleep_step(self, step: NewStep, until: datetime) -> None:
        await self.store.sleep_step(step, until)
        if self.trace is not None:
            self.trace.sleep(step, until)
        log.info(
            "run %s sleeping until %s (step %r, %s from now)",
            self.run_id,
            until.isoformat(timespec="seconds"),
            step.id,
            seconds(max(0.0, (until - datetime.now(UTC)).total_seconds())),
            extra=self._fields(step.id),
        )

    async def wake_step(self, step: StepRecord) -> None:
        await self.store.wake_step(step)

    async def send_events(self, events: list[Event]) -> list[str]:
        return await self.store.send_events(events)

    async def wait_step(self, step: NewStep, spec: WaitSpec) -> None:
        await self.store.wait_step(step, spec)
        until = spec.timeout_at.isoformat(timespec="seconds") if spec.timeout_at else "forever"
        log.info(
            "run %s waiting for event %r until %s (step %r)",
            self.run_id,
            spec.event,
            until,
            step.id,
            extra=self._fields(step.id),
        )

    async def invoke_step(
        self, step: NewStep, function_id: str, data: dict[str, Any], timeout_at: datetime | None
    ) -> None:
        await self.store.invoke_step(step, function_id, data, timeout_at)
        log.info(
            "run %s invoked %s and waits for it (step %r)",
            self.run_id,
            function_id,
            step.id,
            extra=self._fields(step.id),
        )

    async def check_wait(self, step: StepRecord) -> WaitResult:
        return await self.store.check_wait(step)

    async def resolve_step(
        self, step: StepRecord, output: Any, output_json: str, error: dict[str, Any] | None
    ) -> None:
        await self.store.resolve_step(step, output, output_json, error)
        if self.trace is not None:
            await self.trace.waited(self.store.pool, step, self.store.wait_id(step.id), error)
