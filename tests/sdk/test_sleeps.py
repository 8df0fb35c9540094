"""``step.sleep`` and ``step.sleep_until``, in virtual time: days pass in milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import ferryman
from ferryman.testing import InMemoryRuntime, run_function

fm = ferryman.Ferryman(app_id="sleeps")
EVENT = {"name": "test.started", "data": {}}
START = datetime(2026, 1, 1, tzinfo=UTC)  # where the in-memory clock starts


def sleeper(fn_id: str, how: str, value: Any) -> ferryman.Function:
    @fm.function(id=fn_id, trigger=ferryman.on_event("test.started"), retries=0)
    async def handler(ctx: ferryman.Context) -> str:
        if how == "sleep":
            await ctx.step.sleep("nap", value)
        else:
            await ctx.step.sleep_until("nap", value)
        return "awake"

    return handler


@pytest.mark.parametrize(
    ("duration", "expected"),
    [("3 days", timedelta(days=3)), ("1h30m", timedelta(minutes=90)), (45, timedelta(seconds=45)),
     (timedelta(weeks=2), timedelta(weeks=2))],
)  # fmt: skip
async def test_a_sleep_takes_its_duration_in_virtual_time(duration: Any, expected: Any) -> None:
    result = await run_function(sleeper(f"sleep-{expected.total_seconds():.0f}", "sleep",
                                        duration), EVENT)  # fmt: skip

    assert result.status == "COMPLETED"
    assert result.elapsed == expected
    assert result.steps["nap"].wake_at == START + expected
    assert result.passes == 2  # the run left, then resumed at its wake-up time


async def test_work_before_a_sleep_is_not_repeated_after_it() -> None:
    calls: list[str] = []

    @fm.function(id="before-after", trigger=ferryman.on_event("test.started"))
    async def before_after(ctx: ferryman.Context) -> None:
        await ctx.step.run("before", calls.append, "before")
        await ctx.step.sleep("nap", "1 day")
        await ctx.step.run("after", calls.append, "after")

    await run_function(before_after, EVENT)

    assert calls == ["before", "after"]


async def test_sleep_until_accepts_an_aware_datetime_or_an_iso_string() -> None:
    at = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

    by_datetime = await run_function(sleeper("until-datetime", "until", at), EVENT)
    by_string = await run_function(sleeper("until-string", "until", "2026-03-01T09:00:00Z"),
                                   EVENT)  # fmt: skip

    assert by_datetime.elapsed == by_string.elapsed == at - START


async def test_sleeping_until_a_past_time_does_not_sleep() -> None:
    result = await run_function(sleeper("until-past", "until", START - timedelta(days=1)), EVENT)

    assert result.status == "COMPLETED"
    assert (result.elapsed, result.passes) == (timedelta(0), 1)


async def test_a_naive_datetime_is_refused() -> None:
    result = await run_function(sleeper("until-naive", "until", datetime(2026, 3, 1)), EVENT)

    assert result.status == "FAILED"
    assert "naive datetime; give it a time zone" in result.error["message"]


async def test_a_sleep_of_more_than_a_year_is_refused() -> None:
    result = await run_function(sleeper("sleep-too-long", "sleep", "400 days"), EVENT)

    assert result.status == "FAILED"
    assert "sleeps past the limit of one year" in result.error["message"]


async def test_a_sleep_with_a_bad_duration_fails_the_run() -> None:
    result = await run_function(sleeper("sleep-bad", "sleep", "a fortnight"), EVENT)

    assert result.status == "FAILED"
    assert "sleep 'nap' 'a fortnight' is not a duration" in result.error["message"]


async def test_the_clock_inside_the_run_is_the_virtual_clock() -> None:
    runtime = InMemoryRuntime()

    await run_function(sleeper("clock", "sleep", "2h"), EVENT, runtime=runtime)

    assert runtime.now() == START + timedelta(hours=2)


# TODO(sdk): a bad duration is a ValueError in function code, so the whole run is retried.
async def test_a_sleep_with_a_bad_duration_fails_at_once() -> None:
    @fm.function(id="sleep-bad-once", trigger=ferryman.on_event("test.started"))  # 4 retries
    async def sleep_bad_once(ctx: ferryman.Context) -> None:
        await ctx.step.sleep("nap", "a fortnight")

    result = await run_function(sleep_bad_once, EVENT)

    assert result.passes == 1
