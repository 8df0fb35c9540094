"""Finding 6 at small scale: a flood of slow runs of one function held every slot of a
worker, and an unrelated function's run waited for them. Now it starts at once."""

from __future__ import annotations

import asyncio

import pytest

from examples import services
from tests.apps import fair_app
from tests.harness import Stack, wait_for

pytestmark = pytest.mark.integration


async def test_a_flood_of_slow_runs_leaves_room_for_another_function(stack: Stack) -> None:
    # A slow repair sweep: it would otherwise start the quick run through another path.
    await stack.start_worker(
        fair_app.fm, concurrency=4, function_slot_share=0.75, repair_interval_seconds=120
    )
    for _ in range(16):  # more than both pools (new runs, resumes) hold together
        await stack.send("fair.slow", {"seconds": 8})
    await wait_for(lambda: len(services.records("slow.start")) >= 3, 30, "slow runs never began")
    # An idle pull loop waits in a fetch it entered while slots were free; give the quick
    # function's loop time to come round to waiting for a slot, as a busy one does.
    await asyncio.sleep(3)
    quick = await stack.send("fair.quick")
    run = await stack.wait_run(quick, timeout=30)
    assert run[3] == "quick"
    assert services.records("slow.end") == [], "the quick run waited for a slow one to end"
    # 3 of 4 slots in each pool at most: new runs, and runs that came another way
    assert len(services.records("slow.start")) <= 6
