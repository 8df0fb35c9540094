"""One keyed-concurrency function for the stress test: limit 3 per organization."""

from __future__ import annotations

import asyncio

import ferryman
from examples import services

fm = ferryman.Ferryman(app_id="stress")


@fm.function(
    id="keyed",
    trigger=ferryman.on_event("stress.keyed"),
    concurrency=[ferryman.Concurrency(limit=3, key="event.data.org")],
    retries=2,
)
async def keyed(ctx: ferryman.Context) -> str:
    async def body() -> str:
        org = ctx.event.data["org"]
        services.record("start", fn="stress", run=ctx.run_id, key=org)
        await asyncio.sleep(1.0)
        services.record("end", fn="stress", run=ctx.run_id, key=org)
        return "done"

    return await ctx.step.run("work", body)
