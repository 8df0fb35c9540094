"""Two functions on one worker: a slow one flooded with events, and a quick one."""

from __future__ import annotations

import asyncio

import ferryman
from examples import services

fm = ferryman.Ferryman(app_id="fair")


@fm.function(id="slow", trigger=ferryman.on_event("fair.slow"))
async def slow(ctx: ferryman.Context) -> str:
    async def work() -> str:
        services.record("slow.start", run=ctx.run_id)
        await asyncio.sleep(float(ctx.event.data["seconds"]))
        services.record("slow.end", run=ctx.run_id)
        return "slow"

    return await ctx.step.run("work", work)


@fm.function(id="quick", trigger=ferryman.on_event("fair.quick"))
async def quick(ctx: ferryman.Context) -> str:
    return await ctx.step.run("work", lambda: "quick")
