"""Retries: per function and per step, exponential backoff, and the two special errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import ferryman
from ferryman.testing import InMemoryRuntime, run_function

fm = ferryman.Ferryman(app_id="retries")
EVENT = {"name": "test.started", "data": {}}
NO_JITTER = ferryman.Backoff(initial="1s", factor=2, max="1h", jitter=0)


class Failing:
    """Raises ``make_error(n)`` on calls 1..failures, then returns "ok"; records call times."""

    def __init__(self, failures: int, make_error: Any = RuntimeError, runtime: Any = None):
        self.failures, self.make_error, self.runtime = failures, make_error, runtime
        self.calls: list[datetime | None] = []

    def __call__(self) -> str:
        self.calls.append(self.runtime.now() if self.runtime else None)
        if len(self.calls) <= self.failures:
            raise self.make_error(f"failure {len(self.calls)}")
        return "ok"


def one_step(fn_id: str, step: Any, **options: Any) -> ferryman.Function:
    step_retries = options.pop("step_retries", None)

    @fm.function(id=fn_id, trigger=ferryman.on_event("test.started"), **options)
    async def handler(ctx: ferryman.Context) -> Any:
        return await ctx.step.run("call", step, retries=step_retries)

    return handler


async def test_a_step_gets_four_retries_by_default() -> None:
    step = Failing(failures=99)

    result = await run_function(one_step("default", step), EVENT)

    assert result.status == "FAILED"
    assert len(step.calls) == 5
    assert result.steps["call"].attempts == 5


@pytest.mark.parametrize("retries", [0, 1, 20])
async def test_the_function_sets_how_many_times_a_step_is_retried(retries: int) -> None:
    step = Failing(failures=99)

    await run_function(one_step(f"fn-retries-{retries}", step, retries=retries), EVENT)

    assert len(step.calls) == retries + 1


async def test_a_step_may_override_the_function_retries() -> None:
    step = Failing(failures=99)

    await run_function(one_step("step-override", step, retries=10, step_retries=2), EVENT)

    assert len(step.calls) == 3


async def test_a_step_that_recovers_in_time_succeeds() -> None:
    step = Failing(failures=4)

    result = await run_function(one_step("recovers", step), EVENT)

    assert result.status == "COMPLETED"
    assert result.output == "ok"


async def test_backoff_doubles_from_one_second_and_is_capped() -> None:
    runtime = InMemoryRuntime()
    step = Failing(failures=99, runtime=runtime)
    backoff = ferryman.Backoff(initial="1s", factor=2, max="10s", jitter=0)

    await run_function(one_step("backoff", step, retries=6, backoff=backoff), EVENT,
                       runtime=runtime)  # fmt: skip

    gaps = [(b - a).total_seconds() for a, b in zip(step.calls, step.calls[1:], strict=False)]
    assert gaps == [1, 2, 4, 8, 10, 10]


async def test_jitter_only_ever_shortens_the_delay() -> None:
    backoff = ferryman.Backoff(initial="1s", factor=2, max="1h")  # default jitter 20 %

    assert backoff.delay(3, rand=0.0) == timedelta(seconds=8)
    assert backoff.delay(3, rand=0.999) >= timedelta(seconds=8 * 0.8)
    assert backoff.delay(30, rand=0.0) == timedelta(hours=1)


async def test_a_non_retriable_error_stops_at_once() -> None:
    step = Failing(failures=99, make_error=ferryman.NonRetriableError)

    result = await run_function(one_step("non-retriable", step, retries=10), EVENT)

    assert result.status == "FAILED"
    assert len(step.calls) == 1
    assert result.elapsed == timedelta(0)
    assert "NonRetriableError: failure 1" in result.error["message"]


async def test_retry_after_a_delay_sets_the_next_attempt_time() -> None:
    runtime = InMemoryRuntime()
    step = Failing(1, lambda m: ferryman.RetryAfterError(m, "90s"), runtime)

    result = await run_function(one_step("retry-after-delay", step, backoff=NO_JITTER), EVENT,
                                runtime=runtime)  # fmt: skip

    assert result.status == "COMPLETED"
    assert step.calls[1] - step.calls[0] == timedelta(seconds=90)


async def test_retry_after_a_point_in_time_waits_until_then() -> None:
    runtime = InMemoryRuntime()
    at = datetime(2026, 1, 2, 6, 30, tzinfo=UTC)
    step = Failing(1, lambda m: ferryman.RetryAfterError(m, at), runtime)

    await run_function(one_step("retry-after-time", step), EVENT, runtime=runtime)

    assert step.calls[1] == at


async def test_retry_after_still_counts_against_the_retries() -> None:
    step = Failing(99, lambda m: ferryman.RetryAfterError(m, timedelta(minutes=1)))

    result = await run_function(one_step("retry-after-limit", step, retries=2), EVENT)

    assert result.status == "FAILED"
    assert len(step.calls) == 3
    assert result.elapsed == timedelta(minutes=2)


async def test_an_error_outside_steps_retries_the_whole_function() -> None:
    attempts: list[int] = []
    charge = Failing(failures=0)

    @fm.function(id="body-error", trigger=ferryman.on_event("test.started"), retries=2,
                 backoff=NO_JITTER)  # fmt: skip
    async def body_error(ctx: ferryman.Context) -> int:
        await ctx.step.run("charge", charge)
        attempts.append(ctx.attempt)
        if ctx.attempt < 2:
            raise KeyError("not yet")
        return ctx.attempt

    result = await run_function(body_error, EVENT)

    assert result.status == "COMPLETED"
    assert attempts == [0, 1, 2]
    assert len(charge.calls) == 1  # the completed step is not re-run by a function retry
    assert result.elapsed == timedelta(seconds=1 + 2)


async def test_an_error_outside_steps_fails_the_run_after_the_last_attempt() -> None:
    @fm.function(id="body-fails", trigger=ferryman.on_event("test.started"), retries=1)
    async def body_fails(ctx: ferryman.Context) -> None:
        raise KeyError("missing")

    result = await run_function(body_fails, EVENT)

    assert result.status == "FAILED"
    assert result.passes == 2
    assert result.error["name"] == "KeyError"


async def test_a_non_retriable_error_outside_steps_fails_the_run_at_once() -> None:
    @fm.function(id="body-non-retriable", trigger=ferryman.on_event("test.started"))
    async def body_non_retriable(ctx: ferryman.Context) -> None:
        raise ferryman.NonRetriableError("the order was deleted")

    result = await run_function(body_non_retriable, EVENT)

    assert result.status == "FAILED"
    assert result.passes == 1
    assert result.error["message"] == "the order was deleted"


async def test_a_step_cannot_ask_for_more_than_20_retries() -> None:
    @fm.function(id="step-retries-21", trigger=ferryman.on_event("test.started"))  # 4 retries
    async def step_retries_21(ctx: ferryman.Context) -> None:
        await ctx.step.run("call", lambda: None, retries=21)

    result = await run_function(step_retries_21, EVENT)

    assert result.status == "FAILED"
    assert result.error["message"] == "step 'call': retries must be between 0 and 20"
