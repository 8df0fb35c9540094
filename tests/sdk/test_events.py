"""Events: triggers and filters, ``send_event`` exactly once, typed events."""

from __future__ import annotations

from typing import ClassVar

import pytest

import ferryman
from ferryman.testing import InMemoryRuntime, run_function

fm = ferryman.Ferryman(app_id="events")


class OrderPlaced(ferryman.EventModel):
    event_name: ClassVar[str] = "shop/order.placed"

    order_id: str
    total: int


def test_an_event_trigger_matches_its_name_and_its_if_filter() -> None:
    @fm.function(
        id="big-orders",
        trigger=ferryman.on_event("shop/order.placed", if_="event.data.total > 100"),
    )
    async def big_orders(ctx: ferryman.Context) -> None: ...  # fmt: skip

    def event(name: str, total: int) -> ferryman.Event:
        return ferryman.Event(name=name, data={"total": total})

    assert big_orders.accepts(event("shop/order.placed", 250))
    assert not big_orders.accepts(event("shop/order.placed", 50))
    assert not big_orders.accepts(event("shop/order.cancelled", 250))


def test_a_filter_that_errors_on_an_event_does_not_match() -> None:
    @fm.function(id="filter-error", trigger=ferryman.on_event("x", if_="event.data.a.b == 1"))
    async def filter_error(ctx: ferryman.Context) -> None: ...

    assert not filter_error.accepts(ferryman.Event(name="x", data={}))


async def test_send_event_publishes_once_even_when_a_later_step_retries() -> None:
    attempts = 0

    def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise RuntimeError("later step fails")
        return "ok"

    @fm.function(id="fan-out", trigger=ferryman.on_event("test.started"))
    async def fan_out(ctx: ferryman.Context) -> list[str]:
        ids: list[str] = await ctx.step.send_event(
            "notify", [{"name": "email/send", "data": {"to": t}} for t in ("a", "b")]
        )
        await ctx.step.run("flaky", flaky)
        return ids

    result = await run_function(fan_out, {"name": "test.started", "data": {}})

    assert result.status == "COMPLETED"
    assert [e.data["to"] for e in result.sent] == ["a", "b"]
    assert result.output == [e.id for e in result.sent]
    assert len(set(result.output)) == 2
    assert all(result.output)


async def test_send_event_ids_are_stable_for_a_run_and_step() -> None:
    @fm.function(id="stable-ids", trigger=ferryman.on_event("test.started"))
    async def stable_ids(ctx: ferryman.Context) -> list[str]:
        return await ctx.step.send_event("one", {"name": "x", "data": {}})  # type: ignore[no-any-return]

    first = await run_function(stable_ids, {"name": "test.started"}, run_id="r1")
    again = await run_function(stable_ids, {"name": "test.started"}, run_id="r1")
    other = await run_function(stable_ids, {"name": "test.started"}, run_id="r2")

    assert first.output == again.output != other.output


async def test_send_event_keeps_an_id_the_caller_chose() -> None:
    @fm.function(id="own-id", trigger=ferryman.on_event("test.started"))
    async def own_id(ctx: ferryman.Context) -> list[str]:
        return await ctx.step.send_event("one", {"name": "x", "id": "mine"})  # type: ignore[no-any-return]

    assert (await run_function(own_id, {"name": "test.started"})).output == ["mine"]


async def test_an_event_without_object_data_cannot_be_sent() -> None:
    @fm.function(id="bad-data", trigger=ferryman.on_event("test.started"), retries=0)
    async def bad_data(ctx: ferryman.Context) -> None:
        await ctx.step.send_event("one", {"name": "x", "data": [1, 2]})

    result = await run_function(bad_data, {"name": "test.started"})

    assert result.status == "FAILED"
    assert "event 'data' must be an object" in result.error["message"]


async def test_a_typed_trigger_validates_the_event_a_run_receives() -> None:
    @fm.function(id="typed-receive", trigger=ferryman.on_event(OrderPlaced))
    async def typed_receive(ctx: ferryman.Context) -> int:
        return ctx.event.parsed(OrderPlaced).total

    ok = await run_function(typed_receive, OrderPlaced(order_id="o-1", total=120).to_event())
    assert ok.output == 120
    assert typed_receive.config.event_triggers[0].event == "shop/order.placed"

    with pytest.raises(ferryman.EventValidationError, match="does not match OrderPlaced"):
        await run_function(typed_receive, {"name": "shop/order.placed", "data": {"total": "lots"}})


async def test_a_typed_event_is_validated_before_it_is_sent() -> None:
    with pytest.raises(ValueError, match="total"):
        OrderPlaced(order_id="o-1", total="lots")  # type: ignore[arg-type]

    @fm.function(id="typed-send", trigger=ferryman.on_event("test.started"))
    async def typed_send(ctx: ferryman.Context) -> None:
        await ctx.step.send_event("placed", OrderPlaced(order_id="o-1", total=99))

    result = await run_function(typed_send, {"name": "test.started"})

    [sent] = result.sent
    assert (sent.name, sent.data) == ("shop/order.placed", {"order_id": "o-1", "total": 99})


def test_a_typed_trigger_needs_an_event_name() -> None:
    class Nameless(ferryman.EventModel):
        x: int

    with pytest.raises(ValueError, match="Nameless has no event_name"):
        ferryman.on_event(Nameless)


async def test_client_send_inside_a_run_goes_to_the_runtime() -> None:
    @fm.function(id="client-send", trigger=ferryman.on_event("test.started"))
    async def client_send(ctx: ferryman.Context) -> list[str]:
        return await ctx.step.run("send", fm.send, {"name": "audit", "data": {"k": 1}})  # type: ignore[no-any-return]

    runtime = InMemoryRuntime()
    result = await run_function(client_send, {"name": "test.started"}, runtime=runtime)

    assert [e.name for e in runtime.sent] == ["audit"]
    assert result.output == [runtime.sent[0].id]


async def test_a_batch_reaches_the_function_as_ctx_events() -> None:
    @fm.function(
        id="batch",
        trigger=ferryman.on_event("x"),
        batch_events=ferryman.BatchEvents(max_size=3, timeout="5s"),
    )
    async def batch(ctx: ferryman.Context) -> list[int]:
        return [e.data["n"] for e in ctx.events]  # fmt: skip

    result = await run_function(batch, [{"name": "x", "data": {"n": n}} for n in range(3)])

    assert result.output == [0, 1, 2]
