"""The workload the observability tests watch: retries, failures, sleeps, waits, cancels,
slow steps. Each function does what its event's data says, so a test scripts scenarios."""

from __future__ import annotations

import asyncio

import ferryman

fm = ferryman.Ferryman(app_id="watch")

QUICK = ferryman.Backoff(initial="200ms", factor=2.0)
_tries: dict[str, int] = {}


@fm.function(id="flaky", trigger=ferryman.on_event("watch.flaky"), retries=4, backoff=QUICK)
async def flaky(ctx: ferryman.Context) -> str:
    """Fails ``fail`` times in step ``charge``, then sleeps ``sleep`` seconds."""

    def charge() -> str:
        # attempts of this run's step so far, in this worker process (enough for a test)
        _tries[ctx.run_id] = _tries.get(ctx.run_id, 0) + 1
        if _tries[ctx.run_id] <= int(ctx.event.data.get("fail", 0)):
            raise ConnectionError("card processor unavailable")
        return "charged"

    await ctx.step.run("charge", charge)
    await ctx.step.sleep("pause", float(ctx.event.data.get("sleep", 0)))
    return await ctx.step.run("notify", lambda: "notified")


@fm.function(id="doomed", trigger=ferryman.on_event("watch.doomed"), retries=1, backoff=QUICK)
async def doomed(ctx: ferryman.Context) -> str:
    """Always fails (after one retry)."""

    def broken() -> str:
        raise ValueError("this step always fails")

    return await ctx.step.run("broken", broken)


@fm.function(id="waiter", trigger=ferryman.on_event("watch.order"))
async def waiter(ctx: ferryman.Context) -> str:
    """Waits for ``watch.paid`` with the same ``data.order``, up to ``timeout`` seconds."""
    paid = await ctx.step.wait_for_event(
        "paid",
        event="watch.paid",
        match="data.order",
        timeout=f"{int(ctx.event.data.get('timeout', 600))}s",
    )
    return "paid" if paid else "expired"


@fm.function(id="slowpoke", trigger=ferryman.on_event("watch.slow"))
async def slowpoke(ctx: ferryman.Context) -> str:
    """One step that takes ``seconds``."""

    async def work() -> str:
        await asyncio.sleep(float(ctx.event.data.get("seconds", 1)))
        return "done"

    return await ctx.step.run("work", work)


@fm.function(
    id="limited",
    trigger=ferryman.on_event("watch.limited"),
    concurrency=[ferryman.Concurrency(limit=1)],
    rate_limit=ferryman.RateLimit(limit=3, period="1h"),
)
async def limited(ctx: ferryman.Context) -> str:
    """One at a time, three an hour: the fourth event is skipped, the others queue."""
    await ctx.step.run("work", asyncio.sleep, 1.5)
    return "done"
