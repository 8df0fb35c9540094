"""The workload the traces test watches: a retried step, a sleep, a wait for an event, an
``fm.send`` from inside a step (it starts a run of ``shipping``), an invoked function, and
a function that fails, with an on-failure handler."""

from __future__ import annotations

import ferryman

fm = ferryman.Ferryman(app_id="traced")

_tries: dict[str, int] = {}


@fm.function(id="rate", trigger=ferryman.on_event("traced.rate"))
async def rate(ctx: ferryman.Context) -> int:
    return await ctx.step.run("score", lambda: 5)


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
    await ctx.step.invoke("rating", function=rate, data={"order": ctx.event.data["order"]})
    return "paid" if paid else "expired"


@fm.function(id="shipping", trigger=ferryman.on_event("traced.shipping"))
async def shipping(ctx: ferryman.Context) -> str:
    return await ctx.step.run("label", lambda: f"label for {ctx.event.data['order']}")


async def apologise(ctx: ferryman.Context) -> str:
    return await ctx.step.run("apology", lambda: "sorry")


@fm.function(
    id="refund", trigger=ferryman.on_event("traced.refund"), retries=0, on_failure=apologise
)
async def refund(ctx: ferryman.Context) -> str:
    def pay_back() -> str:
        raise ValueError("refunds are closed")

    return await ctx.step.run("pay-back", pay_back)


@fm.function(
    id="limited",
    trigger=ferryman.on_event("traced.limited"),
    concurrency=[ferryman.Concurrency(limit=1, key="event.data.account")],
)
async def limited(ctx: ferryman.Context) -> str:
    """Flow control: its events pass the admission stage, and keep their trace."""
    return await ctx.step.run("book", lambda: "booked")
