"""Functions the waiting, cancelling and invoking tests run; every step is recorded."""

from __future__ import annotations

import asyncio

import ferryman
from examples import services

fm = ferryman.Ferryman(app_id="waiting")


@fm.function(id="await-payment", trigger=ferryman.on_event("order.placed"))
async def await_payment(ctx: ferryman.Context) -> dict[str, object]:
    await ctx.step.run("prepare", lambda: services.record("prepare", run=ctx.run_id) and 1)
    paid = await ctx.step.wait_for_event(
        "pay", event="payment.done", match="data.orderId",
        timeout=float(ctx.event.data.get("timeout", 10)),
    )  # fmt: skip
    await ctx.step.run("after", lambda: services.record("after", run=ctx.run_id) and 1)
    return {"paid": paid.data if paid else None}


@fm.function(id="await-big-payment", trigger=ferryman.on_event("big.order"))
async def await_big_payment(ctx: ferryman.Context) -> object:
    paid = await ctx.step.wait_for_event(
        "pay",
        event="payment.done",
        timeout="10s",
        if_="async.data.orderId == event.data.orderId && async.data.amount >= event.data.amount",
    )
    return paid.data if paid else None


@fm.function(id="wait-beside-a-slow-step", trigger=ferryman.on_event("race.between"))
async def wait_beside_a_slow_step(ctx: ferryman.Context) -> object:
    async def slow() -> str:
        services.record("slow.start", run=ctx.run_id)
        await asyncio.sleep(2)
        return "slow"

    paid, slow_result = await asyncio.gather(
        ctx.step.wait_for_event("pay", event="payment.done", match="data.orderId", timeout="20s"),
        ctx.step.run("slow", slow),
    )
    return {"paid": paid.data if paid else None, "slow": slow_result}


@fm.function(
    id="long-job", trigger=ferryman.on_event("job.started"),
    cancel_on=[ferryman.Cancel(event="job.stop", match="data.jobId")],
)  # fmt: skip
async def long_job(ctx: ferryman.Context) -> str:
    async def long_step() -> str:
        services.record("long.start", run=ctx.run_id)
        await asyncio.sleep(float(ctx.event.data.get("step_seconds", 0)))
        services.record("long.end", run=ctx.run_id)
        return "long"

    await ctx.step.run("long", long_step)
    await ctx.step.sleep("nap", float(ctx.event.data.get("sleep_seconds", 0)))
    await ctx.step.wait_for_event(
        "signal",
        event="job.signal",
        match="data.jobId",
        timeout=float(ctx.event.data.get("wait_seconds", 0.1)),
    )
    await ctx.step.run("next", lambda: services.record("next", run=ctx.run_id) and 1)
    return "finished"


@fm.function(id="double", trigger=ferryman.on_event("calc.double"))
async def double(ctx: ferryman.Context) -> int:
    if ctx.event.data.get("fail"):
        raise ferryman.NonRetriableError("cannot double that")
    await ctx.step.sleep("think", float(ctx.event.data.get("think", 0)))
    return int(await ctx.step.run("double", lambda: ctx.event.data["n"] * 2))


@fm.function(id="calculate", trigger=ferryman.on_event("calc.requested"))
async def calculate(ctx: ferryman.Context) -> object:
    try:
        return await ctx.step.invoke(
            "double-it", function=double, data=dict(ctx.event.data),
            timeout=ctx.event.data.get("timeout", "30s"),
        )  # fmt: skip
    except ferryman.StepError as exc:
        return f"failed: {exc.error_message}"


@fm.function(
    id="welcome-once", trigger=ferryman.on_event("user.seen"), idempotency="event.data.userId"
)
async def welcome_once(ctx: ferryman.Context) -> str:
    await ctx.step.run(
        "welcome", lambda: services.record("welcome", user=ctx.event.data["userId"]) and 1
    )
    return "welcomed"


@fm.function(
    id="big-orders", trigger=ferryman.on_event("order.placed", if_="event.data.amount > 100")
)
async def big_orders(ctx: ferryman.Context) -> str:
    return "big"


@fm.function(id="flaky-pipeline", trigger=ferryman.on_event("pipeline.run"), retries=0)
async def flaky_pipeline(ctx: ferryman.Context) -> str:
    await ctx.step.run("extract", lambda: services.record("extract", run=ctx.run_id) and 1)

    def load() -> int:
        services.record("load", run=ctx.run_id)
        if not services.records("fixed"):
            raise ferryman.NonRetriableError("the warehouse is down")
        return 2

    await ctx.step.run("load", load)
    return "loaded"
