"""The function the chaos test runs: steps, a sleep and a wait, each step's side effect
recorded in the ledger when it starts (so a re-executed step is counted)."""

from __future__ import annotations

import asyncio
from typing import Any

import ferryman
from examples import services

fm = ferryman.Ferryman(app_id="chaos")


@fm.function(id="order", trigger=ferryman.on_event("chaos.order"), retries=10)
async def order(ctx: ferryman.Context) -> Any:
    order_id = ctx.event.data["orderId"]

    def effect(step: str) -> Any:
        async def run() -> str:
            services.record("effect", run=ctx.run_id, step=step, order=order_id)
            await asyncio.sleep(0.2)  # long enough for a kill to land mid-step
            return step

        return run

    await ctx.step.run("reserve", effect("reserve"))
    await ctx.step.sleep("cool-off", 1)
    await ctx.step.run("charge", effect("charge"))
    paid = await ctx.step.wait_for_event(
        "paid", event="chaos.paid", match="data.orderId", timeout="3s"
    )
    await ctx.step.run("ship", effect("ship"))
    return {"order": order_id, "paid": paid is not None}
