"""Await payment: once a booking is approved, give the guest 24 hours to pay.

Send (after seeding an approved booking; a missing one fails the run at once)::

    python -m examples.services seed bookings b-1 '{"status": "approved",
        "guestEmail": "guest@example.com", "amount": 42000, "currency": "EUR"}'
    {"name": "booking.approved", "data": {"bookingId": "b-1"}}

The run loads the booking (one ``db.bookings`` read, no side effect), then leaves the
worker and waits up to 24 hours — or ``"paymentTimeout"`` from the event data (``"2s"``,
``30``) — for the payment provider's webhook::

    {"name": "payment.completed", "data": {"bookingId": "b-1", "paymentId": "pay-9"}}

The payment provider need not know Ferryman's event API: Stripe posts its own events to
``POST /webhooks/stripe-payments``, signed with ``STRIPE_WEBHOOK_SECRET`` (the gateway's
environment), and the webhook below turns a ``payment_intent.succeeded`` whose
``metadata.bookingId`` names the booking into that ``payment.completed`` (Stripe's event id
is the event id, so a redelivery is one event). Other Stripe events are accepted and make
no event.

Only a ``payment.completed`` sent after the wait began, with the same ``bookingId``,
counts. Side effects (see :mod:`examples.services`), once each:

- paid: ``db.bookings.put`` with ``status: "confirmed"`` and the ``paymentId``, then
  ``email.send`` with template ``booking-confirmed``; the run returns
  ``{"bookingId": "b-1", "status": "confirmed", "paymentId": "pay-9"}``;
- not paid in time: ``db.bookings.put`` with ``status: "cancelled"`` and
  ``cancelReason: "payment-timeout"``, then ``email.send`` with template
  ``booking-cancelled-unpaid``; the run returns ``{"bookingId": "b-1", "status":
  "cancelled"}``.

A second ``booking.approved`` for the same booking within 24 hours starts no second run
(``idempotency``), and ``{"name": "booking.cancelled", "data": {"bookingId": "b-1"}}``
while the run waits cancels it (``cancel_on``): nothing is confirmed, cancelled or sent.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ConfigDict
from pydantic.alias_generators import to_camel

import ferryman
from examples import services
from ferryman import webhooks

fm = ferryman.Ferryman(app_id="await-payment")

stripe_payments = fm.webhook(
    name="stripe-payments",
    transform="""
        body.type == "payment_intent.succeeded" && has(body.data.object.metadata.bookingId)
        ? {"name": "payment.completed", "id": body.id,
           "data": {"bookingId": body.data.object.metadata.bookingId,
                    "paymentId": body.data.object.id}}
        : []""",
    verify=webhooks.stripe(secret_env="STRIPE_WEBHOOK_SECRET"),
)

DEFAULT_TIMEOUT = "24h"


class BookingApproved(ferryman.EventModel):
    """``booking.approved``: ``{"bookingId": ...}`` (optionally ``"paymentTimeout"``)."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, serialize_by_alias=True
    )
    event_name: ClassVar[str] = "booking.approved"

    booking_id: str


def load_booking(booking_id: str) -> dict[str, Any]:
    booking = services.db_get("bookings", booking_id)
    if booking is None:
        raise ferryman.NonRetriableError(f"booking {booking_id!r} does not exist")
    return booking


def confirm(booking_id: str, payment_id: str) -> dict[str, Any]:
    return services.db_put("bookings", booking_id, {"status": "confirmed", "paymentId": payment_id})


def cancel(booking_id: str) -> dict[str, Any]:
    return services.db_put(
        "bookings", booking_id, {"status": "cancelled", "cancelReason": "payment-timeout"}
    )


@fm.function(
    id="await-payment",
    trigger=ferryman.on_event(BookingApproved),
    idempotency="event.data.bookingId",
    cancel_on=[ferryman.Cancel(event="booking.cancelled", match="data.bookingId")],
)
async def await_payment(ctx: ferryman.Context) -> dict[str, Any]:
    booking_id = ctx.event.parsed(BookingApproved).booking_id
    booking = await ctx.step.run("load-booking", load_booking, booking_id)
    paid = await ctx.step.wait_for_event(
        "wait-for-payment",
        event="payment.completed",
        match="data.bookingId",
        timeout=ctx.event.data.get("paymentTimeout", DEFAULT_TIMEOUT),
    )
    context = {"bookingId": booking_id}
    if paid is None:
        await ctx.step.run("cancel-booking", cancel, booking_id)
        await ctx.step.run(
            "notify-guest",
            services.send_email,
            booking["guestEmail"],
            "booking-cancelled-unpaid",
            context,
        )
        return {"bookingId": booking_id, "status": "cancelled"}
    payment_id = str(paid.data.get("paymentId", ""))
    await ctx.step.run("confirm-booking", confirm, booking_id, payment_id)
    await ctx.step.run(
        "notify-guest", services.send_email, booking["guestEmail"], "booking-confirmed", context
    )
    return {"bookingId": booking_id, "status": "confirmed", "paymentId": payment_id}
