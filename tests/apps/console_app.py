"""The console's test app: the bookings example plus functions that show each timeline case.

``ferryman dev -m tests.apps.console_app`` hosts both apps (the worker hosts every
``Ferryman`` app a module defines), so the browser tests see the example's functions and
can drive a slow step, a flaky step, a step that fails until switched on, a long sleep and
a wait that times out; a concurrency limit and a rate limit for flow control, and a
signed webhook (``CONSOLE_WEBHOOK_SECRET`` in the gateway's environment).
"""

from __future__ import annotations

import asyncio
from typing import Any

from examples.bookings import fm as bookings

import ferryman
from examples import services
from ferryman import webhooks

__all__ = ["bookings", "fm"]

fm = ferryman.Ferryman(app_id="console")

QUICK = ferryman.Backoff(initial=0.2, factor=1.0, jitter=0.0)


@fm.function(id="timed", trigger=ferryman.on_event("console.timed"), retries=3, backoff=QUICK)
async def timed(ctx: ferryman.Context) -> dict[str, Any]:
    """A slow step (``seconds``, default 0.3) then a step that fails ``failures`` times."""
    failures = int(ctx.event.data.get("failures", 2))

    async def slow() -> str:
        await asyncio.sleep(float(ctx.event.data.get("seconds", 0.3)))
        return "slept"

    def flaky() -> int:
        tries = len(services.records("flaky.try", run=ctx.run_id))
        services.record("flaky.try", run=ctx.run_id)
        if tries < failures:
            raise RuntimeError(f"flaky failure number {tries + 1}")
        return tries + 1

    return {"slow": await ctx.step.run("slow", slow), "tries": await ctx.step.run("flaky", flaky)}


@fm.function(id="charge", trigger=ferryman.on_event("console.charge"), retries=1, backoff=QUICK)
async def charge(ctx: ferryman.Context) -> str:
    """Fails at ``charge`` until the ``switches/charge`` row says ``on``: replay from there."""

    def prepare() -> str:
        return "prepared"

    def take() -> str:
        if not (services.db_get("switches", "charge") or {}).get("on"):
            raise RuntimeError("the payment provider is switched off")
        return "charged"

    await ctx.step.run("prepare", prepare)
    return str(await ctx.step.run("charge", take))


@fm.function(id="nap", trigger=ferryman.on_event("console.nap"))
async def nap(ctx: ferryman.Context) -> str:
    """Sleeps an hour after one step: a run to cancel."""
    await ctx.step.run("start", lambda: "started")
    await ctx.step.sleep("long-nap", "1h")
    return "woke"


@fm.function(id="await-reply", trigger=ferryman.on_event("console.ask"))
async def await_reply(ctx: ferryman.Context) -> str:
    """Waits for ``console.reply`` with the same ``ticket`` (``timeout``, default 1s)."""
    reply = await ctx.step.wait_for_event(
        "wait-for-reply",
        event="console.reply",
        match="data.ticket",
        timeout=ctx.event.data.get("timeout", "1s"),
    )
    return "answered" if reply is not None else "no reply"


@fm.function(id="caller", trigger=ferryman.on_event("console.call"))
async def caller(ctx: ferryman.Context) -> Any:
    """Invokes ``timed`` (one failure first): a parent and a child run, linked both ways."""
    return await ctx.step.invoke(
        "call-timed", function=timed, data={"failures": 0, "seconds": 0}, timeout="1m"
    )


@fm.function(
    id="two-per-account",
    trigger=ferryman.on_event("console.account"),
    concurrency=[ferryman.Concurrency(limit=2, key="event.data.account")],
)
async def two_per_account(ctx: ferryman.Context) -> str:
    """Two runs at a time per ``account``: a third waits QUEUED, and flow control says why."""
    await ctx.step.run("work", asyncio.sleep, float(ctx.event.data.get("seconds", 3)))
    return "done"


@fm.function(
    id="rate-limited",
    trigger=ferryman.on_event("console.rated"),
    rate_limit=ferryman.RateLimit(limit=1, period="1h", key="event.data.user"),
)
async def rate_limited(ctx: ferryman.Context) -> str:
    """One run per ``user`` an hour: a second event is skipped, and the console says why."""
    return str(await ctx.step.run("greet", lambda: f"hello {ctx.event.data.get('user')}"))


# A parcel carrier's callbacks: HMAC-SHA256 of the body, hex, in X-Parcel-Signature. A body
# without ``parcel`` fails the transform (the delivery is kept, with the CEL error).
fm.webhook(
    name="parcels",
    transform='{"name": "console.parcel", "id": "parcel-" + body.parcel, "data": body}',
    verify=webhooks.hmac_sha256(
        header="X-Parcel-Signature", prefix="sha256=", encoding="hex",
        secret_env="CONSOLE_WEBHOOK_SECRET",
    ),
)  # fmt: skip
