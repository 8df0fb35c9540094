"""Functions the durability tests run in child-process workers; every step is recorded."""

from __future__ import annotations

import asyncio
import time

import ferryman
from examples import services

fm = ferryman.Ferryman(app_id="durable")


@fm.function(id="slow-step", trigger=ferryman.on_event("test.slow"), retries=3)
async def slow_step(ctx: ferryman.Context) -> dict[str, int]:
    seconds = float(ctx.event.data.get("seconds", 3))

    def first() -> int:
        services.record("first", run=ctx.run_id)
        return 1

    async def slow() -> int:
        services.record("slow.start", run=ctx.run_id)
        await asyncio.sleep(seconds)
        services.record("slow.end", run=ctx.run_id)
        return 2

    def last() -> int:
        services.record("last", run=ctx.run_id)
        return 3

    a = await ctx.step.run("first", first)
    b = await ctx.step.run("slow", slow)
    c = await ctx.step.run("last", last)
    return {"sum": a + b + c}


@fm.function(id="sleeper", trigger=ferryman.on_event("test.sleep"))
async def sleeper(ctx: ferryman.Context) -> str:
    await ctx.step.run("before", lambda: services.record("before", run=ctx.run_id) and "b")
    await ctx.step.sleep("nap", float(ctx.event.data.get("seconds", 3)))
    await ctx.step.run("after", lambda: services.record("after", run=ctx.run_id) and "a")
    return "woke"


@fm.function(id="stall-once", trigger=ferryman.on_event("test.stall"), retries=0)
async def stall_once(ctx: ferryman.Context) -> str:
    def stall() -> str:
        first = not services.records("stall.start", run=ctx.run_id)
        services.record("stall.start", run=ctx.run_id, pid=__import__("os").getpid())
        if first:
            # Blocks the event loop, so this worker can renew neither lease nor ack deadline:
            # another worker takes the run over while this one is frozen.
            time.sleep(float(ctx.event.data.get("seconds", 6)))
        return f"done by {__import__('os').getpid()}"

    return str(await ctx.step.run("stall", stall))


@fm.function(id="every-minute", trigger=ferryman.on_cron("* * * * *"))
async def every_minute(ctx: ferryman.Context) -> str:
    await ctx.step.run("tick", lambda: services.record("tick", run=ctx.run_id) and "t")
    return ctx.event.data["tick"]
