"""One keyed-concurrency function for the stress test: limit 3 per organization."""

from __future__ import annotations

import asyncio
import signal

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
    if not _loop:
        _loop.append(asyncio.get_running_loop())

    async def body() -> str:
        org = ctx.event.data["org"]
        services.record("start", fn="stress", run=ctx.run_id, key=org)
        await asyncio.sleep(1.0)
        services.record("end", fn="stress", run=ctx.run_id, key=org)
        return "done"

    return await ctx.step.run("work", body)


# Debugging aid for the stress test: SIGUSR1 writes every asyncio task's stack next to
# the ledger, so a run that never finishes shows where its pass waits.
_loop: list[asyncio.AbstractEventLoop] = []


def _dump(signum: int, frame: object) -> None:
    import os

    if not _loop:
        return
    path = services.ledger_path().with_name(f"tasks-{os.getpid()}.txt")
    with path.open("w") as out:
        for task in asyncio.all_tasks(_loop[0]):
            task.print_stack(limit=30, file=out)


signal.signal(signal.SIGUSR1, _dump)
