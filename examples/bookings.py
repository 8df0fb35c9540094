"""Booking: validate, check availability, get paid, confirm, then notify both sides.

Send (after seeding the booking; a missing or non-pending booking fails the run)::

    python -m examples.services seed bookings b-1 '{"status": "pending", "room": "r-7",
        "checkIn": "2026-03-01", "checkOut": "2026-03-04", "amount": 42000, "currency": "EUR",
        "guestEmail": "guest@example.com", "hostEmail": "host@example.com"}'
    {"name": "booking.created", "data": {"bookingId": "b-1"}}

Side effects (see :mod:`examples.services`), once each:

- ``calendar.check`` for the room, then ``payments.charge`` with ``key == "booking-b-1"``;
- ``db.bookings.put`` setting ``status: "confirmed"`` and ``calendar.block`` for the nights;
- two ``email.send`` in parallel: ``booking-confirmed-guest`` and ``booking-confirmed-host``.

A booking paid by bank transfer (``"paymentMethod": "bank_transfer"`` in the seeded row)
cannot be charged on the spot: the run records one ``payments.request`` (key
``booking-b-1``), then leaves the worker and waits up to 24 hours (or
``"paymentTimeout"`` from the event data: ``"2s"``, ``30``) for the bank's webhook::

    {"name": "payment.completed", "data": {"bookingId": "b-1", "paymentId": "pay-9"}}

Only a ``payment.completed`` sent after the request, with the same ``bookingId``, counts;
it confirms the booking (``chargeId`` is the event's ``paymentId``) and notifies both
sides as above. If none arrives in time, the booking is set to ``status: "expired"``
(one ``db.bookings.put``), nothing is blocked and nobody is emailed; the run completes
with ``{"status": "expired"}``.

If the room is already blocked for one of those nights, ``check-availability`` fails at
once (no retries), nothing is charged, and the failure handler records one ``ops.alert``.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from pydantic import ConfigDict
from pydantic.alias_generators import to_camel

import ferryman
from examples import services

fm = ferryman.Ferryman(app_id="bookings")


class BookingCreated(ferryman.EventModel):
    """``booking.created``: ``{"bookingId": ...}`` on the wire."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, serialize_by_alias=True
    )
    event_name: ClassVar[str] = "booking.created"

    booking_id: str


def load_pending_booking(booking_id: str) -> dict[str, Any]:
    booking = services.db_get("bookings", booking_id)
    if booking is None:
        raise ferryman.NonRetriableError(f"booking {booking_id!r} does not exist")
    if booking.get("status") != "pending":
        raise ferryman.NonRetriableError(
            f"booking {booking_id!r} is {booking.get('status')!r}, not 'pending'"
        )
    return booking


def check_availability(booking_id: str, booking: dict[str, Any]) -> bool:
    if not services.room_is_free(
        booking["room"], booking["checkIn"], booking["checkOut"], booking_id
    ):
        raise ferryman.NonRetriableError(
            f"room {booking['room']!r} is not available from {booking['checkIn']} "
            f"to {booking['checkOut']}"
        )
    return True


def take_payment(booking_id: str, booking: dict[str, Any]) -> dict[str, Any]:
    return services.charge(
        booking["guestEmail"],
        booking["amount"],
        booking["currency"],
        reference=f"booking-{booking_id}",
    )


def request_payment(booking_id: str, booking: dict[str, Any]) -> dict[str, Any]:
    return services.request_payment(
        booking["guestEmail"],
        booking["amount"],
        booking["currency"],
        reference=f"booking-{booking_id}",
    )


def expire(booking_id: str) -> dict[str, Any]:
    return services.db_put("bookings", booking_id, {"status": "expired"})


def confirm(booking_id: str, booking: dict[str, Any], charge_id: str) -> dict[str, Any]:
    services.calendar_block(booking["room"], booking["checkIn"], booking["checkOut"], booking_id)
    return services.db_put("bookings", booking_id, {"status": "confirmed", "chargeId": charge_id})


async def alert_operations(ctx: ferryman.Context) -> None:
    """Runs once the booking run has failed for good (event ``ferryman/function.failed``)."""
    failure = ctx.event.data
    original = failure.get("event", {}).get("data", {})
    error = failure.get("error", {})
    await ctx.step.run(
        "alert-operations",
        services.alert_operations,
        f"booking {original.get('bookingId')} failed: {error.get('message', 'unknown error')}",
    )


@fm.function(
    id="process-booking",
    trigger=ferryman.on_event(BookingCreated),
    retries=3,
    on_failure=alert_operations,
)
async def process_booking(ctx: ferryman.Context) -> dict[str, Any]:
    booking_id = ctx.event.parsed(BookingCreated).booking_id
    booking = await ctx.step.run("validate", load_pending_booking, booking_id)
    await ctx.step.run("check-availability", check_availability, booking_id, booking)
    if booking.get("paymentMethod") == "bank_transfer":
        await ctx.step.run("request-payment", request_payment, booking_id, booking)
        paid = await ctx.step.wait_for_event(
            "wait-for-payment",
            event="payment.completed",
            match="data.bookingId",
            timeout=ctx.event.data.get("paymentTimeout", "24h"),
        )
        if paid is None:
            await ctx.step.run("expire", expire, booking_id)
            return {"bookingId": booking_id, "status": "expired"}
        charge_id = str(paid.data.get("paymentId", ""))
    else:
        payment = await ctx.step.run("take-payment", take_payment, booking_id, booking)
        charge_id = payment["charge_id"]
    await ctx.step.run("confirm", confirm, booking_id, booking, charge_id)
    await asyncio.gather(
        ctx.step.run(
            "notify-guest",
            services.send_email,
            booking["guestEmail"],
            "booking-confirmed-guest",
            {"bookingId": booking_id},
        ),
        ctx.step.run(
            "notify-host",
            services.send_email,
            booking["hostEmail"],
            "booking-confirmed-host",
            {"bookingId": booking_id},
        ),
    )
    return {"bookingId": booking_id, "status": "confirmed", "chargeId": charge_id}
