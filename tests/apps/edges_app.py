"""Functions for the rough-edge tests: an event's user across a reload, and an invoked
function's own cancel_on and idempotency."""

from __future__ import annotations

from typing import Any

import ferryman

fm = ferryman.Ferryman(app_id="edges")


@fm.function(id="who", trigger=ferryman.on_event("edges.who"))
async def who(ctx: ferryman.Context) -> Any:
    before = await ctx.step.run("before", lambda: ctx.event.user)
    await ctx.step.sleep("nap", 0.5)  # the next pass reloads the event from PostgreSQL
    return {"before": before, "after": ctx.event.user}


@fm.function(
    id="charge",
    trigger=ferryman.on_event("edges.charge.direct"),
    idempotency="event.data.orderId",
    cancel_on=[ferryman.Cancel(event="edges.order.cancelled", match="data.orderId")],
)
async def charge(ctx: ferryman.Context) -> Any:
    await ctx.step.sleep("settle", float(ctx.event.data.get("settle", 0)))
    return f"charged {ctx.event.data['orderId']}"


@fm.function(id="checkout", trigger=ferryman.on_event("edges.checkout"))
async def checkout(ctx: ferryman.Context) -> Any:
    try:
        return await ctx.step.invoke(
            "charge",
            function=charge,
            data={"orderId": ctx.event.data["orderId"], "settle": ctx.event.data["settle"]},
            timeout="10s",
        )
    except ferryman.StepError as exc:
        return f"failed: {exc}"
