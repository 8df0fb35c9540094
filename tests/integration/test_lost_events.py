"""No accepted event is lost: an event stored in PostgreSQL starts its function's run even
when the function's trigger consumer did not exist yet, or NATS never got (or lost) the
message. Each test acts as the failure would; none waits on internals a user cannot see.
"""

from __future__ import annotations

import asyncio

import nats
import pytest

import ferryman
from ferryman import Event
from ferryman_jetstream import ensure_streams
from ferryman_jetstream import subjects as S
from tests.harness import Stack, wait_for

pytestmark = pytest.mark.integration

fm = ferryman.Ferryman(app_id="lost")
started: list[str] = []


@fm.function(
    id="count",
    trigger=ferryman.on_event("lost.order", if_="event.data.key != 'filtered'"),
    idempotency="event.data.key",
)
async def count(ctx: ferryman.Context) -> str:
    await ctx.step.run("record", lambda: started.append(ctx.event.data["key"]))
    return str(ctx.event.data["key"])


def runs_of_function(stack: Stack) -> list[tuple[str, str]]:
    rows = stack.query("SELECT event_id, status FROM runs WHERE function_id = 'lost-count'")
    return [(r[0], r[1]) for r in rows]


async def delete_trigger_consumer(stack: Stack) -> None:
    nc = await nats.connect(stack.nats.url)
    try:
        await nc.jetstream().delete_consumer(S.EVENTS_STREAM, S.trigger_consumer("lost-count"))
    finally:
        await nc.close()


async def test_events_sent_before_the_trigger_consumer_exists_start_runs(stack: Stack) -> None:
    """The function is declared, then its consumer is missing while events arrive (a new
    DurableFunction not yet reconciled, a consumer lost with a NATS host): when the
    consumer is created it delivers them, before any repair pass runs."""
    started.clear()
    worker = await stack.start_worker(fm, repair_interval_seconds=3600)
    await worker.stop(grace=1)
    await delete_trigger_consumer(stack)

    sent = [await stack.send("lost.order", {"key": f"k{i}"}) for i in range(5)]

    await stack.start_worker(fm, repair_interval_seconds=3600)
    await wait_for(
        lambda: sum(1 for _, s in runs_of_function(stack) if s == "COMPLETED") == 5,
        20,
        lambda: f"runs: {runs_of_function(stack)}",
    )
    assert sorted(e for e, _ in runs_of_function(stack)) == sorted(sent)
    assert sorted(started) == [f"k{i}" for i in range(5)]


async def test_events_stored_but_never_published_are_started_by_the_repair_sweep(
    stack: Stack,
) -> None:
    """PostgreSQL has the events, JetStream never got them (the publish after the store was
    lost with a NATS host crash): the repair sweep starts exactly one run each, respects
    the trigger filter and the idempotency key, and a late delivery changes nothing."""
    started.clear()
    await stack.start_worker(fm, repair_interval_seconds=1)
    bus = await stack.bus()
    events = [Event(name="lost.order", data={"key": f"s{i}"}, id=f"stored-{i}") for i in range(4)]
    received = await bus.store(events)  # stored, answered 200 ... and never published
    later = [
        Event(name="lost.order", data={"key": "s0"}, id="same-key-as-stored-0"),
        Event(name="lost.order", data={"key": "filtered"}, id="filtered"),
    ]
    received.update(await bus.store(later))
    events += later

    await wait_for(
        lambda: sum(1 for _, s in runs_of_function(stack) if s == "COMPLETED") == 4,
        30,
        lambda: f"runs: {runs_of_function(stack)}",
    )
    await bus.publish(events, received)  # the lost messages turn up after all
    await asyncio.sleep(3)  # two more repair passes and the late deliveries

    runs = runs_of_function(stack)
    assert sorted(runs) == sorted((f"stored-{i}", "COMPLETED") for i in range(4))
    assert sorted(started) == ["s0", "s1", "s2", "s3"], "a step ran twice or a run is missing"


async def test_events_before_the_function_was_declared_start_nothing(stack: Stack) -> None:
    """A new function sees events from its declaration on, as in Inngest: older events
    stay unrun even with a repair pass every second."""
    started.clear()
    await ensure_streams((await stack.bus()).js)  # the gateway is up, no worker yet
    await stack.send("lost.order", {"key": "before"})
    await stack.start_worker(fm, repair_interval_seconds=1)
    after = await stack.send("lost.order", {"key": "after"})
    await stack.wait_run(after, timeout=20)
    await asyncio.sleep(7)  # the repair sweep's slack has passed, with several passes

    assert [e for e, _ in runs_of_function(stack)] == [after]
    assert started == ["after"]
