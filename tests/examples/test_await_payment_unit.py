"""The await-payment example under the in-memory runtime: paid, unpaid, someone else paid."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from examples import await_payment, services
from ferryman.testing import run_function

BOOKING = {"status": "approved", "guestEmail": "guest@example.com", "amount": 42000}
EVENT = {"name": "booking.approved", "data": {"bookingId": "b-1"}}


def paid(booking_id: str, payment_id: str = "pay-9") -> dict[str, Any]:
    return {"name": "payment.completed", "data": {"bookingId": booking_id, "paymentId": payment_id}}


async def test_a_payment_within_24_hours_confirms_the_booking() -> None:
    services.seed("bookings", "b-1", BOOKING)

    result = await run_function(await_payment.await_payment, EVENT, incoming=[("5h", paid("b-1"))])

    assert result.status == "COMPLETED"
    assert result.output == {"bookingId": "b-1", "status": "confirmed", "paymentId": "pay-9"}
    assert result.elapsed == timedelta(hours=5)
    assert services.db_get("bookings", "b-1") == {
        **BOOKING, "status": "confirmed", "paymentId": "pay-9",
    }  # fmt: skip
    [mail] = services.calls("email.send")
    assert (mail["to"], mail["template"]) == ("guest@example.com", "booking-confirmed")
    assert "cancel-booking" not in result.steps


async def test_no_payment_within_24_hours_cancels_the_booking() -> None:
    services.seed("bookings", "b-1", BOOKING)

    result = await run_function(
        await_payment.await_payment,
        EVENT,
        incoming=[
            ("1h", paid("b-2")),  # another booking
            ("2h", {"name": "payment.refunded", "data": {"bookingId": "b-1"}}),
            ("24h 1s", paid("b-1")),  # a second too late
        ],
    )

    assert result.status == "COMPLETED"
    assert result.output == {"bookingId": "b-1", "status": "cancelled"}
    assert result.elapsed == timedelta(hours=24)
    row = services.db_get("bookings", "b-1")
    assert (row["status"], row["cancelReason"]) == ("cancelled", "payment-timeout")
    [mail] = services.calls("email.send")
    assert mail["template"] == "booking-cancelled-unpaid"
    assert "confirm-booking" not in result.steps


async def test_the_timeout_comes_from_the_event() -> None:
    services.seed("bookings", "b-1", BOOKING)
    event = {"name": "booking.approved", "data": {"bookingId": "b-1", "paymentTimeout": 3}}

    result = await run_function(await_payment.await_payment, event)

    assert result.output["status"] == "cancelled"
    assert result.elapsed == timedelta(seconds=3)


async def test_a_missing_booking_fails_before_waiting() -> None:
    result = await run_function(await_payment.await_payment, EVENT)

    assert result.status == "FAILED"
    assert "'b-1' does not exist" in result.error["message"]
    assert "wait-for-payment" not in result.steps
    assert result.elapsed < timedelta(minutes=1)


def test_the_function_is_idempotent_per_booking_and_cancelled_with_it() -> None:
    config = await_payment.await_payment.config
    assert config.idempotency == "event.data.bookingId"
    [cancel] = config.cancel_on
    assert (cancel.event, cancel.match) == ("booking.cancelled", "data.bookingId")
