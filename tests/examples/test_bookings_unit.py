"""The booking example under the in-memory runtime, counting what the stand-ins recorded."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from examples import bookings, services
from ferryman.testing import run_function

BOOKING = {
    "status": "pending", "room": "r-7", "checkIn": "2026-03-01", "checkOut": "2026-03-04",
    "amount": 42000, "currency": "EUR",
    "guestEmail": "guest@example.com", "hostEmail": "host@example.com",
}  # fmt: skip
EVENT = {"name": "booking.created", "data": {"bookingId": "b-1"}}


async def test_a_pending_booking_is_charged_confirmed_and_both_sides_notified() -> None:
    services.seed("bookings", "b-1", BOOKING)

    result = await run_function(bookings.process_booking, EVENT)

    assert result.status == "COMPLETED"
    assert result.output["status"] == "confirmed"
    assert services.count("payments.charge", key="booking-b-1", amount=42000) == 1
    assert services.count("calendar.block", room="r-7", booking_id="b-1") == 1
    assert services.db_get("bookings", "b-1")["status"] == "confirmed"
    sent = {(c["to"], c["template"]) for c in services.calls("email.send")}
    assert sent == {
        ("guest@example.com", "booking-confirmed-guest"),
        ("host@example.com", "booking-confirmed-host"),
    }
    assert services.count("ops.alert") == 0


async def test_a_failing_payment_retries_alone_and_charges_once() -> None:
    services.seed("bookings", "b-1", BOOKING)
    services.script("payments.charge", fail=2, error="unavailable")

    result = await run_function(bookings.process_booking, EVENT)

    assert result.status == "COMPLETED"
    assert result.steps["take-payment"].attempts == 3
    assert len(services.attempts("payments.charge")) == 3
    assert services.count("payments.charge") == 1
    assert services.count("calendar.check") == 1  # the step before it is not re-run


async def test_a_missing_booking_fails_without_retrying_and_alerts_operations(
    run_failure_handler: Any,
) -> None:
    result = await run_function(bookings.process_booking, EVENT)

    assert result.status == "FAILED"
    assert "'b-1' does not exist" in result.error["message"]
    assert result.steps["validate"].attempts == 1
    assert services.count("payments.charge") == 0

    await run_failure_handler(bookings.fm, bookings.process_booking, EVENT, result)
    [alert] = services.calls("ops.alert")
    assert "booking b-1 failed" in alert["summary"]


async def test_a_booking_that_is_not_pending_fails() -> None:
    services.seed("bookings", "b-1", {**BOOKING, "status": "cancelled"})

    result = await run_function(bookings.process_booking, EVENT)

    assert result.status == "FAILED"
    assert "is 'cancelled', not 'pending'" in result.error["message"]


async def test_an_unavailable_room_fails_at_once_charges_nothing_and_alerts(
    run_failure_handler: Any,
) -> None:
    services.seed("bookings", "b-1", BOOKING)
    services.calendar_block("r-7", "2026-03-03", "2026-03-05", "b-other")

    result = await run_function(bookings.process_booking, EVENT)

    assert result.status == "FAILED"
    assert result.steps["check-availability"].status == "FAILED"
    assert result.steps["check-availability"].attempts == 1
    assert "take-payment" not in result.steps
    assert services.count("payments.charge") == 0
    assert services.count("email.send") == 0

    await run_failure_handler(bookings.fm, bookings.process_booking, EVENT, result)
    assert services.count("ops.alert") == 1


async def test_the_booking_event_is_typed() -> None:
    event = bookings.BookingCreated(booking_id="b-9").to_event()

    assert event.name == "booking.created"
    assert event.data == {"bookingId": "b-9"}


# -- paying by bank transfer: the run waits for the payment.completed webhook --------------

TRANSFER = {**BOOKING, "paymentMethod": "bank_transfer"}


def paid(booking_id: str, payment_id: str = "pay-9") -> dict[str, Any]:
    return {"name": "payment.completed", "data": {"bookingId": booking_id, "paymentId": payment_id}}


async def test_a_bank_transfer_waits_for_the_payment_then_confirms_and_notifies_both() -> None:
    services.seed("bookings", "b-1", TRANSFER)

    result = await run_function(bookings.process_booking, EVENT, incoming=[("3h", paid("b-1"))])

    assert result.status == "COMPLETED"
    assert result.output == {"bookingId": "b-1", "status": "confirmed", "chargeId": "pay-9"}
    assert result.elapsed == timedelta(hours=3)
    assert result.steps["wait-for-payment"].output["data"]["paymentId"] == "pay-9"
    assert services.count("payments.request", key="booking-b-1", amount=42000) == 1
    assert services.count("payments.charge") == 0
    assert services.count("calendar.block", room="r-7", booking_id="b-1") == 1
    assert services.db_get("bookings", "b-1")["chargeId"] == "pay-9"
    assert {s for s in result.steps if s.startswith("notify-")} == {"notify-guest", "notify-host"}
    assert services.count("email.send") == 2


async def test_an_unpaid_bank_transfer_expires_after_24_hours() -> None:
    services.seed("bookings", "b-1", TRANSFER)

    result = await run_function(
        bookings.process_booking,
        EVENT,
        incoming=[
            ("1h", paid("b-2")),  # another booking's payment
            ("2h", {"name": "payment.failed", "data": {"bookingId": "b-1"}}),
            ("25h", paid("b-1")),  # too late
        ],
    )

    assert result.status == "COMPLETED"
    assert result.output == {"bookingId": "b-1", "status": "expired"}
    assert result.elapsed == timedelta(hours=24)
    assert services.db_get("bookings", "b-1")["status"] == "expired"
    assert services.count("payments.request") == 1
    assert services.count("calendar.block") == 0
    assert services.count("email.send") == 0
    assert "confirm" not in result.steps


async def test_the_payment_timeout_comes_from_the_event() -> None:
    services.seed("bookings", "b-1", TRANSFER)
    event = {"name": "booking.created", "data": {"bookingId": "b-1", "paymentTimeout": "2s"}}

    result = await run_function(bookings.process_booking, event)

    assert result.output["status"] == "expired"
    assert result.elapsed == timedelta(seconds=2)
