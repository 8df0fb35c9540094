"""Unit-test functions without any server: an in-memory runtime in virtual time.

::

    from ferryman.testing import run_function

    result = await run_function(process_booking, {"name": "booking.created", "data": {...}})
    assert result.status == "COMPLETED"
    assert result.steps["validate"].output == {...}

Sleeps and retry backoff advance a virtual clock instead of waiting, so a function that
sleeps three days finishes in milliseconds; ``result.elapsed`` says how much virtual time
passed. The same replay engine the worker uses runs the function, pass after pass, so
memoization and non-determinism checks behave as in production.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ferryman._context import Context
from ferryman._engine import Execution, Outcome
from ferryman._events import Event, coerce_events
from ferryman._function import Function
from ferryman._runtime import NewStep, StepRecord, set_sender

__all__ = ["InMemoryRuntime", "TestResult", "run_function"]


@dataclass
class TestResult:
    """How a run ended under the in-memory runtime."""

    __test__ = False  # not a pytest test class

    status: str
    output: Any
    error: dict[str, Any] | None
    steps: dict[str, StepRecord]
    sent: list[Event]
    passes: int
    elapsed: timedelta


@dataclass
class InMemoryRuntime:
    """A :class:`ferryman._runtime.StepStore` that keeps history in a dict, in virtual time."""

    clock: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    steps: dict[str, StepRecord] = field(default_factory=dict)
    sent: list[Event] = field(default_factory=list)
    timers: list[datetime] = field(default_factory=list)

    def now(self) -> datetime:
        return self.clock

    def _put(self, step: NewStep, status: str, **values: Any) -> StepRecord:
        record = self.steps.get(step.id) or StepRecord(
            step.id, step.position, step.op, status, parallel=step.parallel, name=step.name
        )
        record.status = status
        for key, value in values.items():
            setattr(record, key, value)
        self.steps[step.id] = record
        return record

    async def complete_step(self, step: NewStep, output: Any, output_json: str) -> None:
        self._put(step, "COMPLETED", output=output, attempts=step.attempt + 1)

    async def fail_step(self, step: NewStep, error: dict[str, Any]) -> None:
        self._put(step, "FAILED", error=error, attempts=step.attempt + 1)

    async def retry_step(self, step: NewStep, error: dict[str, Any], at: datetime) -> None:
        self._put(step, "RETRYING", error=error, attempts=step.attempt + 1)
        self.timers.append(at)

    async def sleep_step(self, step: NewStep, until: datetime) -> None:
        self._put(step, "SLEEPING", wake_at=until)
        self.timers.append(until)

    async def wake_step(self, step: StepRecord) -> None:
        step.status = "COMPLETED"

    async def send_events(self, events: list[Event]) -> list[str]:
        self.sent.extend(events)
        return [e.id or "" for e in events]

    async def send(self, events: list[Event]) -> list[str]:
        stamped = [
            e if e.id else e.model_copy(update={"id": f"evt-{len(self.sent) + i}"})
            for i, e in enumerate(events)
        ]
        return await self.send_events(stamped)


async def run_function(
    fn: Function,
    event: Event | dict[str, Any] | list[Any],
    *,
    runtime: InMemoryRuntime | None = None,
    run_id: str = "test-run",
    max_passes: int = 1000,
) -> TestResult:
    """Run ``fn`` for ``event`` (or a batch) to its end, in virtual time."""
    runtime = runtime or InMemoryRuntime()
    events = coerce_events(event)
    for e in events:
        fn.validate_event(e)
    start = runtime.clock
    attempt = 0
    token = set_sender(runtime)
    try:
        for passes in range(1, max_passes + 1):
            execution = Execution(
                fn.config,
                fn.handler,
                runtime,
                run_id,
                events,
                list(runtime.steps.values()),
                attempt=attempt,
            )
            outcome: Outcome = await execution.execute(Context(execution))
            if outcome.status == "RETRY" and outcome.retry_at is not None:
                attempt += 1
                runtime.timers.append(outcome.retry_at)
            if outcome.status in ("COMPLETED", "FAILED"):
                return TestResult(
                    outcome.status,
                    outcome.output,
                    outcome.error,
                    dict(runtime.steps),
                    runtime.sent,
                    passes,
                    runtime.clock - start,
                )
            if runtime.timers:
                runtime.clock = max(runtime.clock, min(runtime.timers))
                runtime.timers.remove(min(runtime.timers))
        raise RuntimeError(f"run did not finish in {max_passes} passes")
    finally:
        set_sender(None)
        del token
