"""Functions with flow control; every step body records when it ran (``examples.services``
ledger), so the tests judge the limits from those timestamps."""

from __future__ import annotations

import asyncio

import ferryman
from examples import services

fm = ferryman.Ferryman(app_id="flow")


async def _work(ctx: ferryman.Context, name: str = "work") -> str:
    seconds = float(ctx.event.data.get("seconds", 0.3))

    async def body() -> str:
        services.record("start", fn=name, run=ctx.run_id, key=ctx.event.data.get("org"))
        await asyncio.sleep(seconds)
        services.record("end", fn=name, run=ctx.run_id, key=ctx.event.data.get("org"))
        return "done"

    return await ctx.step.run("work", body)


@fm.function(
    id="keyed",
    trigger=ferryman.on_event("flow.keyed"),
    concurrency=[ferryman.Concurrency(limit=2, key="event.data.org")],
)
async def keyed(ctx: ferryman.Context) -> str:
    return await _work(ctx, "keyed")


@fm.function(
    id="one-at-a-time",
    trigger=ferryman.on_event("flow.one"),
    concurrency=[ferryman.Concurrency(limit=1)],
)
async def one_at_a_time(ctx: ferryman.Context) -> str:
    await _work(ctx, "one")
    if ctx.event.data.get("nap"):
        await ctx.step.sleep("nap", float(ctx.event.data["nap"]))
        await ctx.step.run("after-nap", lambda: services.record("after-nap", run=ctx.run_id))
    return "ok"


@fm.function(
    id="throttled",
    trigger=ferryman.on_event("flow.throttled"),
    throttle=ferryman.Throttle(limit=1, period="1s", key="event.data.org"),
)
async def throttled(ctx: ferryman.Context) -> str:
    return await _work(ctx, "throttled")


@fm.function(
    id="burst",
    trigger=ferryman.on_event("flow.burst"),
    throttle=ferryman.Throttle(limit=1, period="1s", burst=3),
)
async def burst(ctx: ferryman.Context) -> str:
    return await _work(ctx, "burst")


@fm.function(
    id="rate-limited",
    trigger=ferryman.on_event("flow.rated"),
    rate_limit=ferryman.RateLimit(limit=1, period="60s", key="event.data.user"),
)
async def rate_limited(ctx: ferryman.Context) -> str:
    return await _work(ctx, "rated")


@fm.function(
    id="debounced",
    trigger=ferryman.on_event("flow.debounced"),
    debounce=ferryman.Debounce(period="1s", key="event.data.org", timeout="3s"),
)
async def debounced(ctx: ferryman.Context) -> str:
    services.record("debounced", run=ctx.run_id, n=ctx.event.data["n"], org=ctx.event.data["org"])
    return str(ctx.event.data["n"])


@fm.function(
    id="batched",
    trigger=ferryman.on_event("flow.batched"),
    batch_events=ferryman.BatchEvents(max_size=3, timeout="2s"),
)
async def batched(ctx: ferryman.Context) -> list[int]:
    ns = [e.data["n"] for e in ctx.events]
    services.record("batched", run=ctx.run_id, ns=ns)
    return ns


@fm.function(
    id="prioritized",
    trigger=ferryman.on_event("flow.prioritized"),
    concurrency=[ferryman.Concurrency(limit=1)],
    priority=ferryman.Priority(run="event.data.prio"),
)
async def prioritized(ctx: ferryman.Context) -> str:
    return await _work(ctx, "prioritized")


@fm.function(
    id="single-skip",
    trigger=ferryman.on_event("flow.single-skip"),
    singleton=ferryman.Singleton(key="event.data.org", mode="skip"),
)
async def single_skip(ctx: ferryman.Context) -> str:
    return await _work(ctx, "single-skip")


@fm.function(
    id="single-cancel",
    trigger=ferryman.on_event("flow.single-cancel"),
    singleton=ferryman.Singleton(mode="cancel"),
)
async def single_cancel(ctx: ferryman.Context) -> str:
    await _work(ctx, "single-cancel")
    await ctx.step.run("second", lambda: services.record("second", run=ctx.run_id))
    return "ok"


@fm.function(
    id="finish-timeout",
    trigger=ferryman.on_event("flow.finish-timeout"),
    timeouts=ferryman.Timeouts(finish="1s"),
)
async def finish_timeout(ctx: ferryman.Context) -> str:
    await _work(ctx, "finish-timeout")
    await ctx.step.run("late", lambda: services.record("late", run=ctx.run_id))
    return "ok"


@fm.function(
    id="start-timeout",
    trigger=ferryman.on_event("flow.start-timeout"),
    concurrency=[ferryman.Concurrency(limit=1)],
    timeouts=ferryman.Timeouts(start="1s"),
)
async def start_timeout(ctx: ferryman.Context) -> str:
    return await _work(ctx, "start-timeout")
