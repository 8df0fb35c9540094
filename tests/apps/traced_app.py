"""The workload the traces test watches: a retried step, a sleep, a wait for an event and
an ``fm.send`` from inside a step, which starts a run of a second function."""

from __future__ import annotations

import ferryman

fm = ferryman.Ferryman(app_id="traced")

_tries: dict[str, int] = {}


@fm.function(
    id="checkout",
    trigger=ferryman.on_event("traced.order"),
    retries=2,
    backoff=ferryman.Backoff(initial="200ms"),
)
async def checkout(ctx: ferryman.Context) -> str:
    def charge() -> str:
        _tries[ctx.run_id] = _tries.get(ctx.run_id, 0) + 1
        if _tries[ctx.run_id] == 1:  # the first attempt fails; the retry succeeds
            raise ConnectionError("card processor unavailable")
        return "charged"

    async def ship() -> list[str]:
        return await fm.send({"name": "traced.shipping", "data": ctx.event.data})

    await ctx.step.run("charge", charge)
    await ctx.step.sleep("cool-off", 1)
    await ctx.step.run("ship", ship)
    paid = await ctx.step.wait_for_event(
        "paid", event="traced.paid", match="data.order", timeout="60s"
    )
    return "paid" if paid else "expired"


@fm.function(id="shipping", trigger=ferryman.on_event("traced.shipping"))
async def shipping(ctx: ferryman.Context) -> str:
    return await ctx.step.run("label", lambda: f"label for {ctx.event.data['order']}")
