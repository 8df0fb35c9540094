"""ferryman.testing.run_events: flow control in virtual time, the worker's semantics."""

from __future__ import annotations

from datetime import timedelta

import pytest

import ferryman
from ferryman.testing import run_events

fm = ferryman.Ferryman(app_id="sim")


@fm.function(
    id="throttled",
    trigger=ferryman.on_event("t"),
    throttle=ferryman.Throttle(limit=1, period="10s", burst=2),
)
async def throttled(ctx: ferryman.Context) -> int:
    return int(ctx.event.data["n"])


@fm.function(
    id="rated",
    trigger=ferryman.on_event("r"),
    rate_limit=ferryman.RateLimit(limit=2, period="1m", key="event.data.user"),
)
async def rated(ctx: ferryman.Context) -> int:
    return int(ctx.event.data["n"])


@fm.function(
    id="debounced",
    trigger=ferryman.on_event("d"),
    debounce=ferryman.Debounce(period="5s", key="event.data.k", timeout="12s"),
)
async def debounced(ctx: ferryman.Context) -> int:
    return int(ctx.event.data["n"])


@fm.function(
    id="batched",
    trigger=ferryman.on_event("b"),
    batch_events=ferryman.BatchEvents(max_size=3, timeout="30s"),
)
async def batched(ctx: ferryman.Context) -> list[int]:
    return [int(e.data["n"]) for e in ctx.events]


@fm.function(
    id="single",
    trigger=ferryman.on_event("s"),
    singleton=ferryman.Singleton(mode="skip"),
)
async def single(ctx: ferryman.Context) -> int:
    await ctx.step.sleep("nap", "1m")
    return int(ctx.event.data["n"])


@fm.function(
    id="slow",
    trigger=ferryman.on_event("f"),
    timeouts=ferryman.Timeouts(finish="30s"),
)
async def slow(ctx: ferryman.Context) -> str:
    await ctx.step.run("a", lambda: "a")
    await ctx.step.sleep("nap", "1m")
    await ctx.step.run("b", lambda: "b")
    return "done"


def ev(name: str, n: int, **data: object) -> dict[str, object]:
    return {"name": name, "data": {"n": n, **data}}


async def test_throttle_delays_starts_and_burst_lets_some_through_at_once() -> None:
    result = await run_events(throttled, [(0, ev("t", n)) for n in range(4)])
    assert [r.started for r in result.runs] == [
        timedelta(0),
        timedelta(0),
        timedelta(seconds=10),
        timedelta(seconds=20),
    ]
    assert [r.result.output for r in result.runs] == [0, 1, 2, 3]
    assert result.skipped == []


async def test_rate_limit_skips_per_key() -> None:
    result = await run_events(
        rated, [(0, ev("r", n, user="a")) for n in range(3)] + [(0, ev("r", 9, user="b"))]
    )
    assert sorted(r.result.output for r in result.runs) == [0, 1, 9]
    assert [(e.data["n"], rule) for e, rule in result.skipped] == [(2, "rate_limit")]


async def test_debounce_runs_with_the_last_event_and_the_timeout_caps_it() -> None:
    quiet = await run_events(debounced, [(0, ev("d", 0, k="x")), (2, ev("d", 1, k="x"))])
    assert [(r.started, r.result.output) for r in quiet.runs] == [(timedelta(seconds=7), 1)]
    assert [rule for _, rule in quiet.skipped] == ["debounce"]
    busy = await run_events(debounced, [(s * 3, ev("d", s, k="x")) for s in range(8)])
    # an event every 3 s never leaves 5 s of quiet: the 12 s timeout starts the run
    assert busy.runs[0].started == timedelta(seconds=12)
    assert busy.runs[0].result.output == 3  # the last event before it started
    assert busy.runs[1].result.output == 7  # the event at 12 s began the next debounce


async def test_batches_fill_up_or_time_out() -> None:
    result = await run_events(batched, [(0, ev("b", n)) for n in range(4)])
    assert [(r.started, r.result.output) for r in result.runs] == [
        (timedelta(0), [0, 1, 2]),
        (timedelta(seconds=30), [3]),
    ]


async def test_singleton_skip_while_a_run_sleeps() -> None:
    result = await run_events(single, [(0, ev("s", 0)), (30, ev("s", 1)), (90, ev("s", 2))])
    assert [r.result.output for r in result.runs] == [0, 2]
    assert [(e.data["n"], rule) for e, rule in result.skipped] == [(1, "singleton")]


async def test_timeouts_finish_cancels_before_the_next_step() -> None:
    result = await run_events(slow, [(0, {"name": "f"})])
    [run] = result.runs
    assert run.result.status == "CANCELLED"
    assert "b" not in run.result.steps


async def test_singleton_cancel_is_refused_rather_than_ignored() -> None:
    app = ferryman.Ferryman(app_id="x")

    @app.function(
        id="c", trigger=ferryman.on_event("c"), singleton=ferryman.Singleton(mode="cancel")
    )
    async def c(ctx: ferryman.Context) -> None:
        return None

    with pytest.raises(NotImplementedError, match="Singleton"):
        await run_events(c, [(0, {"name": "c"}), (1, {"name": "c"})])
