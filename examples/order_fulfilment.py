"""Order fulfilment: load the order, fan out its follow-ups, wait for the shipping label.

Send (after seeding the order; a missing one fails the run at once)::

    python -m examples.services seed orders o-1 '{"customerEmail": "ada@example.com",
        "items": [{"sku": "mug", "quantity": 2}], "total": 3000, "currency": "EUR"}'
    {"name": "shop/order.placed", "data": {"orderId": "o-1"}}

The run loads the order, then sends three events in one ``send_event`` step (sent once,
however often the run is replayed), each handled by its own small function of this app:

- ``email/send`` (template ``order-received``) -> ``send-email``: one ``email.send``;
- ``inventory/reserve`` -> ``reserve-inventory``: one ``inventory.reserve`` for ``o-1``;
- ``analytics/track`` (``order placed``) -> ``track-analytics``: one ``analytics.track``.

It then leaves the worker and waits up to 7 days — or ``"shippingTimeout"`` from the
event data (``"2s"``, ``30``) — for the warehouse's label::

    {"name": "shipping/label-created", "data": {"orderId": "o-1", "trackingNumber": "TN-1"}}

The shipping provider posts its own callback to ``POST /webhooks/shipping-labels``::

    {"event": "label.created",
     "label": {"id": "lbl_1", "reference": "o-1", "trackingNumber": "TN-1"}}

signed with ``X-Carrier-Signature: sha256=<hex HMAC-SHA256 of the body>`` under
``CARRIER_WEBHOOK_SECRET``; the webhook below makes that label event of it (its label id
is the event id: a redelivery is one event). Other callbacks make no event.

Only a label sent after the wait began, for the same ``orderId``, counts. Then:

- shipped: ``db.orders.put`` with ``status: "shipped"`` and the ``trackingNumber``, and an
  ``email/send`` event with template ``order-shipped`` (one more ``email.send``); the run
  returns ``{"orderId": "o-1", "status": "shipped", "trackingNumber": "TN-1"}``;
- no label in time: ``db.orders.put`` with ``status: "delayed"``, one ``ops.alert``, and
  an ``email/send`` with template ``order-delayed``; the run returns
  ``{"orderId": "o-1", "status": "delayed"}``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ConfigDict
from pydantic.alias_generators import to_camel

import ferryman
from examples import services
from ferryman import webhooks

fm = ferryman.Ferryman(app_id="order-fulfilment")

shipping_labels = fm.webhook(
    name="shipping-labels",
    transform="""
        body.event == "label.created"
        ? {"name": "shipping/label-created", "id": "label-" + body.label.id,
           "data": {"orderId": body.label.reference,
                    "trackingNumber": body.label.trackingNumber}}
        : []""",
    verify=webhooks.hmac_sha256(
        header="X-Carrier-Signature", prefix="sha256=", secret_env="CARRIER_WEBHOOK_SECRET"
    ),
)

DEFAULT_TIMEOUT = "7 days"


class OrderPlaced(ferryman.EventModel):
    """``shop/order.placed``: ``{"orderId": ...}`` (optionally ``"shippingTimeout"``)."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, serialize_by_alias=True
    )
    event_name: ClassVar[str] = "shop/order.placed"

    order_id: str


def load_order(order_id: str) -> dict[str, Any]:
    order = services.db_get("orders", order_id)
    if order is None:
        raise ferryman.NonRetriableError(f"order {order_id!r} does not exist")
    return order


def email(to: str, template: str, order_id: str, **extra: Any) -> dict[str, Any]:
    """An ``email/send`` event, which :func:`send_email` turns into one email."""
    context = {"orderId": order_id, **extra}
    return {"name": "email/send", "data": {"to": to, "template": template, "context": context}}


def follow_ups(order_id: str, order: dict[str, Any]) -> list[dict[str, Any]]:
    """What a placed order sets off, as events other functions handle."""
    return [
        email(order["customerEmail"], "order-received", order_id),
        {"name": "inventory/reserve", "data": {"orderId": order_id, "items": order["items"]}},
        {
            "name": "analytics/track",
            "data": {
                "name": "order placed",
                "properties": {
                    "orderId": order_id,
                    "total": order["total"],
                    "currency": order["currency"],
                },
            },
        },
    ]


def mark_shipped(order_id: str, tracking_number: str) -> dict[str, Any]:
    return services.db_put(
        "orders", order_id, {"status": "shipped", "trackingNumber": tracking_number}
    )


def mark_delayed(order_id: str, waited: Any) -> dict[str, Any]:
    order = services.db_put("orders", order_id, {"status": "delayed"})
    services.alert_operations(
        f"order {order_id} has no shipping label after {waited}", {"orderId": order_id}
    )
    return order


@fm.function(id="fulfil-order", trigger=ferryman.on_event(OrderPlaced))
async def fulfil_order(ctx: ferryman.Context) -> dict[str, Any]:
    order_id = ctx.event.parsed(OrderPlaced).order_id
    timeout = ctx.event.data.get("shippingTimeout", DEFAULT_TIMEOUT)
    order = await ctx.step.run("load-order", load_order, order_id)
    await ctx.step.send_event("fan-out", follow_ups(order_id, order))
    label = await ctx.step.wait_for_event(
        "wait-for-shipping-label",
        event="shipping/label-created",
        if_="async.data.orderId == event.data.orderId",
        timeout=timeout,
    )
    if label is None:
        await ctx.step.run("mark-delayed", mark_delayed, order_id, timeout)
        await ctx.step.send_event(
            "notify-delayed", email(order["customerEmail"], "order-delayed", order_id)
        )
        return {"orderId": order_id, "status": "delayed"}
    tracking_number = str(label.data.get("trackingNumber", ""))
    await ctx.step.run("mark-shipped", mark_shipped, order_id, tracking_number)
    await ctx.step.send_event(
        "notify-shipped",
        email(order["customerEmail"], "order-shipped", order_id, trackingNumber=tracking_number),
    )
    return {"orderId": order_id, "status": "shipped", "trackingNumber": tracking_number}


# -- the functions the fanned-out events start ---------------------------------------------


@fm.function(id="send-email", trigger=ferryman.on_event("email/send"))
async def send_email(ctx: ferryman.Context) -> dict[str, Any]:
    data = ctx.event.data
    sent: dict[str, Any] = await ctx.step.run(
        "send", services.send_email, data["to"], data["template"], data.get("context", {})
    )
    return sent


@fm.function(id="reserve-inventory", trigger=ferryman.on_event("inventory/reserve"))
async def reserve_inventory(ctx: ferryman.Context) -> dict[str, Any]:
    data = ctx.event.data
    reserved: dict[str, Any] = await ctx.step.run(
        "reserve", services.reserve_inventory, data["orderId"], data["items"]
    )
    return reserved


@fm.function(id="track-analytics", trigger=ferryman.on_event("analytics/track"))
async def track_analytics(ctx: ferryman.Context) -> None:
    data = ctx.event.data
    await ctx.step.run("track", services.track, data["name"], data.get("properties", {}))
