"""The app the real-pods suite runs in worker pods (built FROM the worker image, one COPY).

Every step execution is written to a ledger table in the run database, with the pod that
ran it, so a test can count how often each step ran and where: the proof that a killed or
scaled-down worker never makes a completed step run again.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import psycopg

import ferryman

fm = ferryman.Ferryman(app_id="e2e-pods")

LEDGER = """CREATE TABLE IF NOT EXISTS e2e_ledger (
    run_id text NOT NULL, step text NOT NULL, pod text NOT NULL, at timestamptz DEFAULT now())"""


async def record(run_id: str, step: str) -> str:
    pod = os.environ.get("HOSTNAME", "?")
    async with await psycopg.AsyncConnection.connect(
        os.environ["FERRYMAN_DATABASE_URL"], autocommit=True
    ) as conn:
        await conn.execute(LEDGER)
        await conn.execute(
            "INSERT INTO e2e_ledger (run_id, step, pod) VALUES (%s, %s, %s)", (run_id, step, pod)
        )
    return pod


async def long_step(run_id: str, seconds: float) -> str:
    await record(run_id, "long:start")
    await asyncio.sleep(seconds)
    return await record(run_id, "long:done")


@fm.function(id="durable", trigger=ferryman.on_event("e2e.durable"))
async def durable(ctx: ferryman.Context) -> dict[str, Any]:
    """Three steps; the middle one takes data.seconds."""
    first = await ctx.step.run("first", record, ctx.run_id, "first")
    long = await ctx.step.run("long", long_step, ctx.run_id, float(ctx.event.data["seconds"]))
    last = await ctx.step.run("last", record, ctx.run_id, "last")
    return {"first": first, "long": long, "last": last}


@fm.function(id="sleeper", trigger=ferryman.on_event("e2e.sleep"))
async def sleeper(ctx: ferryman.Context) -> dict[str, Any]:
    """A step, a durable sleep of data.seconds, a step."""
    before = await ctx.step.run("before", record, ctx.run_id, "before")
    await ctx.step.sleep("nap", f"{int(ctx.event.data['seconds'])}s")
    after = await ctx.step.run("after", record, ctx.run_id, "after")
    return {"before": before, "after": after}
