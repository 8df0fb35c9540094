"""``step.run``: memoized results, retries alone, parallel branches, ids and limits."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from typing import Any

import pytest

import ferryman
from ferryman.testing import InMemoryRuntime, run_function

fm = ferryman.Ferryman(app_id="steps")
EVENT = {"name": "test.started", "data": {}}


def on(event: str = "test.started") -> ferryman.EventTrigger:
    return ferryman.on_event(event)


class Flaky:
    """A callable that fails ``failures`` times, then returns ``value``; counts its calls."""

    def __init__(self, failures: int = 0, value: Any = "ok", exc: type = RuntimeError) -> None:
        self.failures, self.value, self.exc, self.calls = failures, value, exc, 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc(f"failure {self.calls}")
        return self.value


async def test_a_completed_step_never_runs_again_while_a_later_one_retries() -> None:
    first, second = Flaky(value={"n": 1}), Flaky(failures=2)

    @fm.function(id="memo", trigger=on())
    async def memo(ctx: ferryman.Context) -> Any:
        a = await ctx.step.run("first", first)
        b = await ctx.step.run("second", second)
        return [a, b]

    result = await run_function(memo, EVENT)

    assert result.status == "COMPLETED"
    assert result.output == [{"n": 1}, "ok"]
    assert (first.calls, second.calls) == (1, 3)
    assert result.passes == 3  # the function body was replayed, the first step was not


async def test_a_step_returns_its_json_round_tripped_output_on_every_pass() -> None:
    seen: list[Any] = []

    @fm.function(id="json-output", trigger=on())
    async def json_output(ctx: ferryman.Context) -> None:
        seen.append(await ctx.step.run("tuple", lambda: (1, 2)))
        await ctx.step.sleep("nap", "1s")

    await run_function(json_output, EVENT)

    assert seen == [[1, 2], [1, 2]]  # the same JSON value, live and replayed


async def test_a_step_may_be_a_coroutine_function_with_arguments() -> None:
    async def add(a: int, b: int) -> int:
        await asyncio.sleep(0)
        return a + b

    @fm.function(id="coroutine-step", trigger=on())
    async def coroutine_step(ctx: ferryman.Context) -> int:
        return await ctx.step.run("add", add, 2, 3)  # type: ignore[no-any-return]

    assert (await run_function(coroutine_step, EVENT)).output == 5


async def test_an_output_that_is_not_json_fails_the_run_with_a_clear_error() -> None:
    @fm.function(id="not-json", trigger=on())
    async def not_json(ctx: ferryman.Context) -> None:
        await ctx.step.run("set", lambda: {1, 2})

    result = await run_function(not_json, EVENT)

    assert result.status == "FAILED"
    assert "not JSON-serializable" in result.error["message"]
    assert result.steps["set"].attempts == 1  # no retries for a programming error


async def test_repeated_step_ids_are_numbered_in_call_order() -> None:
    @fm.function(id="repeats", trigger=on())
    async def repeats(ctx: ferryman.Context) -> list[int]:
        return [await ctx.step.run("fetch", lambda i=i: i) for i in range(3)]

    result = await run_function(repeats, EVENT)

    assert result.output == [0, 1, 2]
    assert {k: s.output for k, s in result.steps.items()} == {"fetch": 0, "fetch:1": 1,
                                                              "fetch:2": 2}  # fmt: skip


async def test_parallel_steps_run_concurrently_and_are_checkpointed_each() -> None:
    running, peak = 0, 0

    async def work(i: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001)
        running -= 1
        return i * i

    @fm.function(id="parallel", trigger=on())
    async def parallel(ctx: ferryman.Context) -> list[int]:
        return list(await asyncio.gather(*(ctx.step.run(f"sq-{i}", work, i) for i in range(5))))

    result = await run_function(parallel, EVENT)

    assert result.output == [0, 1, 4, 9, 16]
    assert peak == 5
    assert all(result.steps[f"sq-{i}"].status == "COMPLETED" for i in range(5))
    assert sum(s.parallel for s in result.steps.values()) == 4  # all but the first overlap


async def test_a_failing_parallel_branch_retries_alone() -> None:
    calls: Counter[int] = Counter()

    async def work(i: int) -> int:
        calls[i] += 1
        await asyncio.sleep(0)
        if i == 2 and calls[i] < 3:
            raise RuntimeError("flaky")
        return i

    @fm.function(id="parallel-retry", trigger=on())
    async def parallel_retry(ctx: ferryman.Context) -> list[int]:
        return list(await asyncio.gather(*(ctx.step.run(f"w-{i}", work, i) for i in range(4))))

    result = await run_function(parallel_retry, EVENT)

    assert result.status == "COMPLETED"
    assert result.output == [0, 1, 2, 3]
    assert calls == {0: 1, 1: 1, 2: 3, 3: 1}


async def test_an_exhausted_step_raises_a_step_error_the_function_can_catch() -> None:
    always = Flaky(failures=99, exc=ValueError)

    @fm.function(id="catches", trigger=on(), retries=2)
    async def catches(ctx: ferryman.Context) -> dict[str, Any]:
        try:
            await ctx.step.run("doomed", always)
        except ferryman.StepError as exc:
            fallback = await ctx.step.run("fallback", lambda: "plan b")
            return {"step": exc.step_id, "error": exc.error_name, "then": fallback}
        return {}

    result = await run_function(catches, EVENT)

    assert result.status == "COMPLETED"
    assert result.output == {"step": "doomed", "error": "ValueError", "then": "plan b"}
    assert always.calls == 3
    assert result.steps["doomed"].status == "FAILED"
    assert result.steps["doomed"].error["message"] == "failure 3"


async def test_an_uncaught_step_error_fails_the_run_without_retrying_the_function() -> None:
    always = Flaky(failures=99)

    @fm.function(id="uncaught", trigger=on(), retries=1)
    async def uncaught(ctx: ferryman.Context) -> None:
        await ctx.step.run("doomed", always)

    result = await run_function(uncaught, EVENT)

    assert result.status == "FAILED"
    assert result.error["name"] == "StepError"
    assert "step 'doomed' failed: RuntimeError: failure 2" in result.error["message"]
    assert always.calls == 2  # the step's two attempts; the function is not run again


async def test_changing_the_code_under_a_run_in_flight_is_a_non_determinism_error() -> None:
    runtime = InMemoryRuntime()

    @fm.function(id="version-one", trigger=on())
    async def version_one(ctx: ferryman.Context) -> None:
        await ctx.step.run("charge", lambda: "charged")
        await ctx.step.run("email", lambda: "sent")

    @fm.function(id="version-two", trigger=on())
    async def version_two(ctx: ferryman.Context) -> None:
        await ctx.step.run("charge", lambda: "charged")
        await ctx.step.run("sms", lambda: "texted")  # replaced "email" at position 1

    assert (await run_function(version_one, EVENT, runtime=runtime)).status == "COMPLETED"
    result = await run_function(version_two, EVENT, runtime=runtime)

    assert result.status == "FAILED"
    assert result.error["name"] == "NonDeterminismError"
    assert (
        "met step 'sms' at position 1, where history recorded step 'email'"
        in (result.error["message"])
    )


async def test_a_step_output_over_4_mib_fails_the_run_and_names_the_limit() -> None:
    @fm.function(id="big-output", trigger=on())
    async def big_output(ctx: ferryman.Context) -> None:
        await ctx.step.run("huge", lambda: "x" * (4 * 1024 * 1024))  # + 2 quotes in JSON

    result = await run_function(big_output, EVENT)

    assert result.status == "FAILED"
    assert result.error["name"] == "LimitExceededError"
    assert "step output limit is 4194304 bytes" in result.error["message"]
    assert "huge" not in result.steps  # nothing was checkpointed


async def test_an_output_of_just_under_4_mib_is_fine() -> None:
    @fm.function(id="large-output", trigger=on())
    async def large_output(ctx: ferryman.Context) -> int:
        return len(await ctx.step.run("large", lambda: "x" * (4 * 1024 * 1024 - 2)))

    assert (await run_function(large_output, EVENT)).status == "COMPLETED"


@pytest.mark.parametrize(("steps", "status"), [(1000, "COMPLETED"), (1001, "FAILED")])
async def test_a_run_has_at_most_1000_steps(steps: int, status: str) -> None:
    @fm.function(id=f"many-steps-{steps}", trigger=on())
    async def many_steps(ctx: ferryman.Context) -> None:
        for _ in range(steps):
            await ctx.step.run("tick", lambda: None)

    result = await run_function(many_steps, EVENT)

    assert result.status == status
    if status == "FAILED":
        assert "limit of 1000 steps per run" in result.error["message"]


async def test_an_empty_step_id_fails_the_run() -> None:
    @fm.function(id="empty-id", trigger=on())
    async def empty_id(ctx: ferryman.Context) -> None:
        await ctx.step.run("", lambda: None)

    result = await run_function(empty_id, EVENT)

    assert result.status == "FAILED"
    assert "step id must be a non-empty string" in result.error["message"]


async def test_the_context_exposes_the_event_run_id_and_attempt() -> None:
    @fm.function(id="context", trigger=on())
    async def context(ctx: ferryman.Context) -> dict[str, Any]:
        return {"event": ctx.event.data, "events": len(ctx.events), "run": ctx.run_id,
                "attempt": ctx.attempt}  # fmt: skip

    result = await run_function(
        context, {"name": "test.started", "data": {"k": 1}}, run_id="run-42"
    )

    assert result.output == {"event": {"k": 1}, "events": 1, "run": "run-42", "attempt": 0}


# TODO(sdk): the three tests below describe behaviour the SDK does not have yet.


async def test_non_determinism_is_caught_after_parallel_steps_too() -> None:
    runtime = InMemoryRuntime()

    @fm.function(id="parallel-one", trigger=on())
    async def parallel_one(ctx: ferryman.Context) -> None:
        await asyncio.gather(*(ctx.step.run(s, asyncio.sleep, 0.001) for s in "ab"))
        await ctx.step.run("email", lambda: "sent")

    @fm.function(id="parallel-two", trigger=on())
    async def parallel_two(ctx: ferryman.Context) -> None:
        await asyncio.gather(*(ctx.step.run(s, asyncio.sleep, 0.001) for s in "ab"))
        await ctx.step.run("sms", lambda: "texted")

    await run_function(parallel_one, EVENT, runtime=runtime)
    result = await run_function(parallel_two, EVENT, runtime=runtime)

    assert result.status == "FAILED"


async def test_a_broad_except_cannot_hide_non_determinism() -> None:
    runtime = InMemoryRuntime()

    @fm.function(id="before-change", trigger=on())
    async def before_change(ctx: ferryman.Context) -> None:
        await ctx.step.run("email", lambda: "sent")

    @fm.function(id="after-change", trigger=on())
    async def after_change(ctx: ferryman.Context) -> None:
        with contextlib.suppress(Exception):  # the mistake under test
            await ctx.step.run("sms", lambda: "texted")

    await run_function(before_change, EVENT, runtime=runtime)
    result = await run_function(after_change, EVENT, runtime=runtime)

    assert result.status == "FAILED"
