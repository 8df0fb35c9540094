"""The order-fulfilment example under the in-memory runtime, fan-out consumers included."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from examples import order_fulfilment, services
from ferryman import Event
from ferryman.testing import TestResult, run_function

ORDER = {
    "customerEmail": "ada@example.com", "items": [{"sku": "mug", "quantity": 2}],
    "total": 3000, "currency": "EUR",
}  # fmt: skip
EVENT = {"name": "shop/order.placed", "data": {"orderId": "o-1"}}
CONSUMERS = {
    "email/send": order_fulfilment.send_email,
    "inventory/reserve": order_fulfilment.reserve_inventory,
    "analytics/track": order_fulfilment.track_analytics,
}


def label(order_id: str, tracking: str = "TN-1") -> dict[str, Any]:
    return {
        "name": "shipping/label-created",
        "data": {"orderId": order_id, "trackingNumber": tracking},
    }


async def deliver(sent: list[Event]) -> list[TestResult]:
    """Run the function each sent event starts, as the worker would."""
    return [await run_function(CONSUMERS[event.name], event) for event in sent]


async def test_the_order_fans_out_waits_for_the_label_and_notifies_when_shipped() -> None:
    services.seed("orders", "o-1", ORDER)

    result = await run_function(
        order_fulfilment.fulfil_order, EVENT, incoming=[("2 days", label("o-1"))]
    )

    assert result.status == "COMPLETED"
    assert result.output == {"orderId": "o-1", "status": "shipped", "trackingNumber": "TN-1"}
    assert result.elapsed == timedelta(days=2)
    assert [e.name for e in result.sent] == [
        "email/send", "inventory/reserve", "analytics/track", "email/send",
    ]  # fmt: skip
    assert all(e.id for e in result.sent)
    assert result.sent[1].data == {"orderId": "o-1", "items": ORDER["items"]}
    assert services.db_get("orders", "o-1")["status"] == "shipped"
    assert services.db_get("orders", "o-1")["trackingNumber"] == "TN-1"

    runs = await deliver(result.sent)

    assert [r.status for r in runs] == ["COMPLETED"] * 4
    assert [(c["to"], c["template"]) for c in services.calls("email.send")] == [
        ("ada@example.com", "order-received"),
        ("ada@example.com", "order-shipped"),
    ]
    assert services.calls("email.send")[1]["context"]["trackingNumber"] == "TN-1"
    [reserve] = services.calls("inventory.reserve")
    assert (reserve["order_id"], reserve["items"]) == ("o-1", ORDER["items"])
    assert runs[1].output == {"order_id": "o-1", "reserved": 2}
    [track] = services.calls("analytics.track")
    assert track["name"] == "order placed"
    assert track["properties"] == {"orderId": "o-1", "total": 3000, "currency": "EUR"}
    assert services.count("ops.alert") == 0


async def test_no_label_within_7_days_marks_the_order_delayed_and_alerts() -> None:
    services.seed("orders", "o-1", ORDER)

    result = await run_function(
        order_fulfilment.fulfil_order,
        EVENT,
        incoming=[
            ("1 day", label("o-2")),  # another order's label
            ("2 days", {"name": "shipping/label-voided", "data": {"orderId": "o-1"}}),
            ("8 days", label("o-1")),  # too late
        ],
    )

    assert result.status == "COMPLETED"
    assert result.output == {"orderId": "o-1", "status": "delayed"}
    assert result.elapsed == timedelta(days=7)
    assert services.db_get("orders", "o-1")["status"] == "delayed"
    [alert] = services.calls("ops.alert")
    assert "order o-1 has no shipping label" in alert["summary"]
    assert [e.data.get("template") for e in result.sent if e.name == "email/send"] == [
        "order-received", "order-delayed",
    ]  # fmt: skip
    assert "mark-shipped" not in result.steps


async def test_the_shipping_timeout_comes_from_the_event() -> None:
    services.seed("orders", "o-1", ORDER)
    event = {"name": "shop/order.placed", "data": {"orderId": "o-1", "shippingTimeout": "2s"}}

    result = await run_function(order_fulfilment.fulfil_order, event)

    assert result.output["status"] == "delayed"
    assert result.elapsed == timedelta(seconds=2)


async def test_a_missing_order_fails_at_once_and_sends_nothing() -> None:
    result = await run_function(order_fulfilment.fulfil_order, EVENT)

    assert result.status == "FAILED"
    assert "'o-1' does not exist" in result.error["message"]
    assert result.steps["load-order"].attempts == 1
    assert result.sent == []
