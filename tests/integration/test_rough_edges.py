"""Rough edges that used to bite: an event's user lost on reload, and an invoked
function started without its own cancel_on and idempotency."""

from __future__ import annotations

import asyncio

import pytest

from ferryman import Event
from tests.apps import edges_app
from tests.harness import Stack, wait_for

pytestmark = pytest.mark.integration


async def test_an_events_user_survives_the_run_being_reloaded(stack: Stack) -> None:
    await stack.start_worker(edges_app.fm)
    bus = await stack.bus()
    user = {"id": "u-7", "roles": ["admin"]}
    [event_id] = await bus.send([Event(name="edges.who", data={}, user=user)])
    run = await stack.wait_run(event_id, timeout=30)
    assert run[3] == {"before": user, "after": user}


def charge_runs(stack: Stack, order_id: str) -> list[tuple[object, ...]]:
    return stack.query(
        "SELECT r.id, r.status FROM runs r JOIN events e ON e.id = r.event_id "
        "WHERE r.function_id = 'edges-charge' AND e.data->>'orderId' = %s",
        order_id,
    )


async def test_an_invoked_function_keeps_its_idempotency(stack: Stack) -> None:
    await stack.start_worker(edges_app.fm)
    first = await stack.send("edges.checkout", {"orderId": "o-1", "settle": 1})
    second = await stack.send("edges.checkout", {"orderId": "o-1", "settle": 1})
    assert (await stack.wait_run(first, timeout=30))[3] == "charged o-1"
    assert (await stack.wait_run(second, timeout=30))[3] == "charged o-1"
    assert len(charge_runs(stack, "o-1")) == 1, "one charge per order, invoked twice"


async def test_an_invoked_function_keeps_its_cancel_on(stack: Stack) -> None:
    await stack.start_worker(edges_app.fm)
    parent = await stack.send("edges.checkout", {"orderId": "o-2", "settle": 60})
    await wait_for(
        lambda: [r[1] for r in charge_runs(stack, "o-2")] == ["SLEEPING"], 30, "child never slept"
    )
    await asyncio.sleep(0.3)  # the matcher learns the announced cancel wait
    await stack.send("edges.order.cancelled", {"orderId": "o-2"})
    await wait_for(
        lambda: [r[1] for r in charge_runs(stack, "o-2")] == ["CANCELLED"],
        30,
        lambda: f"the invoked run was not cancelled: {charge_runs(stack, 'o-2')}",
    )
    run = await stack.wait_run(parent, timeout=30)
    assert str(run[3]).startswith("failed:")
