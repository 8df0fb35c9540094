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
from ferryman._durations import Duration, parse_duration
from ferryman._engine import Execution, Outcome
from ferryman._events import Event, coerce_events, value_at
from ferryman._expressions import Expression
from ferryman._function import Function
from ferryman._runtime import NewStep, StepRecord, WaitResult, WaitSpec, reset_sender, set_sender
from ferryman.errors import NonRetriableError, describe

__all__ = ["FlowResult", "InMemoryRuntime", "TestResult", "run_events", "run_function"]


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
    #: events that arrive later: ``(arrival time, event)``; see ``run_function(incoming=)``
    arrivals: list[tuple[datetime, Event]] = field(default_factory=list)
    #: functions ``step.invoke`` may call, by id: a Function or a plain callable(data)
    functions: dict[str, Any] = field(default_factory=dict)
    waits: dict[str, tuple[WaitSpec, datetime]] = field(default_factory=dict)
    resolved: dict[str, WaitResult] = field(default_factory=dict)

    def now(self) -> datetime:
        return self.clock

    def _put(self, step: NewStep, status: str, **values: Any) -> StepRecord:
        record = self.steps.get(step.id) or StepRecord(
            step.id,
            step.position,
            values.pop("op", step.op),
            status,
            parallel=step.parallel,
            name=step.name,
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

    def _matches(self, spec: WaitSpec, event: Event) -> bool:
        if event.name != spec.event:
            return False
        if spec.match_path is not None:
            value = value_at(event.data, spec.match_path)
            return value is not None and value == spec.match_value
        if spec.expression:
            expr = Expression(spec.expression, where="wait_for_event")
            return expr.matches({"event": spec.trigger or {}, "async": event.to_wire()})
        return True

    def _first_arrival(self, spec: WaitSpec, since: datetime) -> tuple[datetime, Event] | None:
        for at, event in sorted(self.arrivals, key=lambda a: a[0]):
            in_time = spec.timeout_at is None or at <= spec.timeout_at
            if at >= since and in_time and self._matches(spec, event):
                return at, event
        return None

    async def wait_step(self, step: NewStep, spec: WaitSpec) -> None:
        self._put(step, "WAITING")
        self.waits[step.id] = (spec, self.clock)
        arrival = self._first_arrival(spec, self.clock)
        due = [t for t in (arrival[0] if arrival else None, spec.timeout_at) if t is not None]
        if due:
            self.timers.append(min(due))

    async def invoke_step(
        self, step: NewStep, function_id: str, data: dict[str, Any], timeout_at: datetime | None
    ) -> None:
        self._put(step, "WAITING", op="invoke")
        target = self.functions.get(function_id)
        if target is None:
            raise NonRetriableError(
                f"the in-memory runtime does not know function {function_id!r}; pass "
                f"run_function(..., functions={{{function_id!r}: fn}})"
            )
        if isinstance(target, Function):
            child = await run_function(
                target,
                {"name": "ferryman/function.invoked", "data": data},
                runtime=InMemoryRuntime(clock=self.clock, functions=self.functions),
                run_id=f"{step.id}-child",
            )
            finished = {"output": child.output, "error": child.error}
        else:
            try:
                finished = {"output": target(data), "error": None}
            except Exception as exc:
                finished = {"output": None, "error": describe(exc)}
        self.resolved[step.id] = WaitResult("event", {"data": finished})
        self.timers.append(self.clock)

    async def check_wait(self, step: StepRecord) -> WaitResult:
        if step.id in self.resolved:
            return self.resolved[step.id]
        spec, since = self.waits[step.id]
        arrival = self._first_arrival(spec, since)
        if arrival is not None and arrival[0] <= self.clock:
            return WaitResult("event", arrival[1].to_wire())
        if spec.timeout_at is not None and self.clock >= spec.timeout_at:
            return WaitResult("timeout")
        return WaitResult("pending")

    async def resolve_step(
        self, step: StepRecord, output: Any, output_json: str, error: dict[str, Any] | None
    ) -> None:
        step.status = "FAILED" if error else "COMPLETED"
        step.output, step.error = output, error

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
    incoming: list[tuple[Duration, Any]] | None = None,
    functions: dict[str, Any] | None = None,
    cancel_at: datetime | None = None,
) -> TestResult:
    """Run ``fn`` for ``event`` (or a batch) to its end, in virtual time.

    Args:
        incoming: events that arrive later, as ``(delay after the start, event)``; a
            ``wait_for_event`` sees those that arrive while it waits.
        functions: what ``step.invoke`` may call, by function id: a decorated function
            (run in memory too) or a plain callable taking the data.
        cancel_at: the virtual time the run is cancelled at (``timeouts.finish``): a
            pass due later does not happen and the run ends CANCELLED.
    """
    runtime = runtime or InMemoryRuntime()
    for delay, later in incoming or []:
        for e in coerce_events(later):
            runtime.arrivals.append((runtime.clock + parse_duration(delay), e))
    runtime.functions.update(functions or {})
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
                if cancel_at is not None and min(runtime.timers) > cancel_at:
                    runtime.clock = cancel_at
                    return TestResult(
                        "CANCELLED", None, {"name": "Cancelled", "message": "timeouts.finish"},
                        dict(runtime.steps), runtime.sent, passes, runtime.clock - start,
                    )  # fmt: skip
                runtime.clock = max(runtime.clock, min(runtime.timers))
                runtime.timers.remove(min(runtime.timers))
        raise RuntimeError(f"run did not finish in {max_passes} passes")
    finally:
        # Restore, not clear: an invoked child's run_function must leave its parent's
        # sender in place, or the parent's next fm.send finds none.
        reset_sender(token)


@dataclass
class FlowRun:
    """One run flow control let start: its events, when (virtual time from the first
    arrival) and how it ended."""

    events: list[Event]
    started: timedelta
    result: TestResult


@dataclass
class FlowResult:
    """What a series of events did under the function's flow control."""

    runs: list[FlowRun]
    #: events that started no run, with the rule: rate_limit, singleton, debounce
    #: (replaced by a later event), timeouts.start (the run would have started too late)
    skipped: list[tuple[Event, str]]


async def run_events(
    fn: Function, arrivals: list[tuple[Duration, Any]], *, functions: dict[str, Any] | None = None
) -> FlowResult:
    """Send events at virtual times (``(delay from the start, event)``) and run what the
    function's flow control lets through: rate limit, singleton ``skip``, debounce, batch,
    throttle and timeouts, as the worker decides them. Step bodies take no virtual time,
    so concurrency limits and priority never hold a run back here (the worker enforces
    them; see docs/sdk.md)."""
    from ferryman._flowsim import Planned, plan

    origin = InMemoryRuntime().clock
    timed = [
        (origin + parse_duration(delay), e) for delay, item in arrivals for e in coerce_events(item)
    ]
    finish = fn.config.timeouts.finish if fn.config.timeouts else None
    done: dict[int, TestResult] = {}

    async def simulate(run: Planned) -> TestResult:
        if id(run) not in done:
            done[id(run)] = await run_function(
                fn, run.events, runtime=InMemoryRuntime(clock=run.start),
                run_id=f"run-{len(done)}", functions=functions,
                cancel_at=run.start + finish if finish else None,
            )  # fmt: skip
        return done[id(run)]

    async def end_of(run: Planned) -> datetime:  # singleton: is the last run still going?
        return run.start + (await simulate(run)).elapsed

    decided = await plan(fn, timed, end_of)
    runs, skipped = [], list(decided.skipped)
    for run in sorted(decided.runs, key=lambda r: r.start):
        if run.cancelled:
            skipped += [(e, "timeouts.start") for e in run.events]
            continue
        runs.append(FlowRun(run.events, run.start - origin, await simulate(run)))
    return FlowResult(runs, skipped)
