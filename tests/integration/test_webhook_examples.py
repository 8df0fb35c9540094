"""The examples' webhooks, end to end: a worker declares them from code (as under
``ferryman dev``), the payment provider and the carrier post their own signed callbacks to
the gateway, and the waiting runs resume. Nothing else is hosted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from examples import await_payment, order_fulfilment, services
from ferryman_worker.gateway import Gateway, create_app
from tests.harness import Stack, wait_for

pytestmark = pytest.mark.integration

STRIPE_SECRET = "whsec_example"
CARRIER_SECRET = "carrier-example"


@pytest.fixture
async def gateway(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", STRIPE_SECRET)
    monkeypatch.setenv("CARRIER_WEBHOOK_SECRET", CARRIER_SECRET)
    gw = Gateway(stack.settings())
    await gw.open()
    transport = httpx.ASGITransport(app=create_app(gw))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        yield client
    await gw.close()


def stripe_post(event: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(event).encode()
    stamp = int(time.time())
    signature = hmac.new(STRIPE_SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    headers = {
        "Content-Type": "application/json",
        "Stripe-Signature": f"t={stamp},v1={signature.hexdigest()}",
    }
    return {"content": body, "headers": headers}


def carrier_post(callback: dict[str, Any], secret: str = CARRIER_SECRET) -> dict[str, Any]:
    body = json.dumps(callback).encode()
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Carrier-Signature": f"sha256={digest}"}
    return {"content": body, "headers": headers}


def intent(event_id: str, kind: str, booking_id: str | None) -> dict[str, Any]:
    metadata = {"bookingId": booking_id} if booking_id else {}
    return {
        "id": event_id, "object": "event", "type": kind,
        "data": {"object": {"id": "pi_3", "object": "payment_intent", "amount": 42000,
                            "metadata": metadata}},
    }  # fmt: skip


async def test_a_stripe_webhook_pays_the_booking_that_await_payment_waits_for(
    stack: Stack, gateway: httpx.AsyncClient
) -> None:
    services.seed("bookings", "b-1", {"status": "approved", "guestEmail": "g@example.com"})
    await stack.start_worker(await_payment.fm)
    approved = await stack.send("booking.approved", {"bookingId": "b-1", "paymentTimeout": 60})
    await stack.wait_run(approved, "WAITING")

    other = await gateway.post(
        "/webhooks/stripe-payments", **stripe_post(intent("evt_0", "charge.refunded", "b-1"))
    )
    assert other.json()["ids"] == []
    paid = stripe_post(intent("evt_1", "payment_intent.succeeded", "b-1"))
    for _ in range(2):  # Stripe retries; one event either way
        response = await gateway.post("/webhooks/stripe-payments", **paid)
        assert response.status_code == 200, response.text
        assert response.json()["ids"] == ["evt_1"]

    run = await stack.wait_run(approved)
    assert run[3] == {"bookingId": "b-1", "status": "confirmed", "paymentId": "pi_3"}
    assert services.db_get("bookings", "b-1")["status"] == "confirmed"  # type: ignore[index]
    forged = dict(paid, headers={**paid["headers"], "Stripe-Signature": "t=1,v1=00"})
    assert (await gateway.post("/webhooks/stripe-payments", **forged)).status_code == 401


async def test_a_carrier_webhook_completes_the_order_fulfilment_wait(
    stack: Stack, gateway: httpx.AsyncClient
) -> None:
    services.seed("orders", "o-1", {
        "customerEmail": "ada@example.com", "items": [{"sku": "mug", "quantity": 2}],
        "total": 3000, "currency": "EUR",
    })  # fmt: skip
    await stack.start_worker(order_fulfilment.fm)
    placed = await stack.send("shop/order.placed", {"orderId": "o-1", "shippingTimeout": 60})
    await stack.wait_run(placed, "WAITING", function_id="order-fulfilment-fulfil-order")

    label = {"event": "label.created",
             "label": {"id": "lbl_7", "reference": "o-1", "trackingNumber": "TN-7"}}  # fmt: skip
    refused = await gateway.post("/webhooks/shipping-labels", **carrier_post(label, "wrong"))
    assert refused.status_code == 401
    response = await gateway.post("/webhooks/shipping-labels", **carrier_post(label))
    assert response.json()["ids"] == ["label-lbl_7"]

    run = await stack.wait_run(placed, function_id="order-fulfilment-fulfil-order")
    assert run[3] == {"orderId": "o-1", "status": "shipped", "trackingNumber": "TN-7"}
    await wait_for(lambda: services.count("email.send", template="order-shipped") == 1, 15, "")
