"""The examples that wait for events (3, 5 and 9 of FEATURES.md), end to end.

A real worker, NATS JetStream and PostgreSQL: each test sends the events an example's
docstring names and checks the side effects in the ledger of ``examples.services``. The
examples take their timeouts from the event data, so the timeout paths take seconds, not
days. Each example is checked with the awaited event, with the timeout, and with events
that must not resume the wait (another id, or sent before the wait began).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from examples import await_payment, bookings, order_fulfilment, services
from tests.harness import Stack, wait_for

pytestmark = pytest.mark.integration

# -- helpers ------------------------------------------------------------------------------


def steps(stack: Stack, run_id: str) -> dict[str, dict[str, Any]]:
    """The run's steps by id: status, op and output."""
    rows = stack.query("SELECT step_id, status, op, output FROM steps WHERE run_id = %s", run_id)
    return {r[0]: {"status": r[1], "op": r[2], "output": r[3]} for r in rows}


def status(stack: Stack, event_id: str) -> str:
    [run] = stack.runs_of(event_id)
    return str(run[2])


def runs_of_function(stack: Stack, function_id: str) -> list[tuple[Any, ...]]:
    return stack.query(
        "SELECT id, status FROM runs WHERE function_id = %s ORDER BY created_at", function_id
    )


def emails() -> list[tuple[str, str]]:
    return sorted((c["to"], c["template"]) for c in services.calls("email.send"))


def row(table: str, id: str) -> dict[str, Any]:
    doc = services.db_get(table, id)
    assert doc is not None, f"no {table} row {id!r}"
    return doc


async def ledger_has(kind: str, n: int = 1, timeout: float = 15, **match: Any) -> None:
    """Wait until ``n`` successful ``kind`` calls matching ``match`` are in the ledger."""
    await wait_for(
        lambda: services.count(kind, **match) >= n,
        timeout,
        lambda: f"expected {n} {kind} {match}; ledger: {services.records(kind)}",
    )


def paid(booking_id: str, payment_id: str = "pay-9") -> dict[str, Any]:
    return {"bookingId": booking_id, "paymentId": payment_id}


# -- 3. bookings paid by bank transfer -----------------------------------------------------

BOOKING = {
    "status": "pending", "room": "r-7", "checkIn": "2026-03-01", "checkOut": "2026-03-04",
    "amount": 42000, "currency": "EUR", "paymentMethod": "bank_transfer",
    "guestEmail": "guest@example.com", "hostEmail": "host@example.com",
}  # fmt: skip
PROCESS_BOOKING = "bookings-process-booking"


async def test_booking_waits_for_its_payment_then_confirms_and_notifies_both_sides(
    stack: Stack,
) -> None:
    services.seed("bookings", "b-1", BOOKING)
    await stack.start_worker(bookings.fm)

    created = await stack.send("booking.created", {"bookingId": "b-1", "paymentTimeout": 30})
    waiting = await stack.wait_run(created, "WAITING", function_id=PROCESS_BOOKING)
    assert services.count("payments.request", key="booking-b-1", amount=42000) == 1
    [(lease_owner,)] = stack.query("SELECT lease_owner FROM runs WHERE id = %s", waiting[0])
    assert lease_owner is None, "a waiting run is held by no worker"

    await stack.send("payment.completed", paid("b-2"))  # another booking's payment
    await stack.send("payment.failed", {"bookingId": "b-1"})  # not the awaited event
    await asyncio.sleep(0.7)
    assert status(stack, created) == "WAITING"
    assert services.count("calendar.block") == 0

    await stack.send("payment.completed", paid("b-1"))
    run = await stack.wait_run(created, function_id=PROCESS_BOOKING)

    assert run[3] == {"bookingId": "b-1", "status": "confirmed", "chargeId": "pay-9"}
    assert services.count("payments.charge") == 0
    assert services.count("calendar.block", room="r-7", booking_id="b-1") == 1
    assert (row("bookings", "b-1")["status"], row("bookings", "b-1")["chargeId"]) == (
        "confirmed",
        "pay-9",
    )
    assert emails() == [
        ("guest@example.com", "booking-confirmed-guest"),
        ("host@example.com", "booking-confirmed-host"),
    ]
    done = steps(stack, run[0])
    assert done["wait-for-payment"]["status"] == "COMPLETED"
    assert done["wait-for-payment"]["output"]["data"] == paid("b-1")
    assert "take-payment" not in done
    assert services.count("ops.alert") == 0


async def test_booking_expires_when_no_payment_arrives_in_time(stack: Stack) -> None:
    services.seed("bookings", "b-1", BOOKING)
    await stack.start_worker(bookings.fm)
    # Paid before the booking even asked: an event sent before the wait does not count.
    await stack.send("payment.completed", paid("b-1", "pay-early"))
    await asyncio.sleep(0.3)

    created = await stack.send("booking.created", {"bookingId": "b-1", "paymentTimeout": 2})
    await stack.wait_run(created, "WAITING", function_id=PROCESS_BOOKING)
    await stack.send("payment.completed", paid("b-2"))
    run = await stack.wait_run(created, timeout=20, function_id=PROCESS_BOOKING)

    assert run[3] == {"bookingId": "b-1", "status": "expired"}
    assert row("bookings", "b-1")["status"] == "expired"
    assert services.count("db.bookings.put") == 1
    assert services.count("payments.request") == 1
    assert services.count("calendar.block") == 0
    assert emails() == []
    assert steps(stack, run[0])["wait-for-payment"]["output"] is None
    assert services.count("ops.alert") == 0


# -- 5. await payment ------------------------------------------------------------------------

APPROVED = {"status": "approved", "guestEmail": "guest@example.com", "amount": 42000}
AWAIT_PAYMENT = "await-payment-await-payment"


async def test_approved_booking_is_confirmed_by_its_payment_and_started_once(
    stack: Stack,
) -> None:
    services.seed("bookings", "b-1", APPROVED)
    await stack.start_worker(await_payment.fm)

    approved = await stack.send("booking.approved", {"bookingId": "b-1", "paymentTimeout": 30})
    await stack.wait_run(approved, "WAITING", function_id=AWAIT_PAYMENT)
    await stack.send("payment.completed", paid("b-2"))
    await asyncio.sleep(0.7)
    assert status(stack, approved) == "WAITING"
    again = await stack.send("booking.approved", {"bookingId": "b-1", "paymentTimeout": 30})
    await asyncio.sleep(0.5)
    assert stack.runs_of(again) == [], "one run per booking (idempotency)"

    await stack.send("payment.completed", paid("b-1"))
    run = await stack.wait_run(approved, function_id=AWAIT_PAYMENT)

    assert run[3] == {"bookingId": "b-1", "status": "confirmed", "paymentId": "pay-9"}
    assert row("bookings", "b-1") == {**APPROVED, "status": "confirmed", "paymentId": "pay-9"}
    assert services.count("db.bookings.put") == 1
    assert emails() == [("guest@example.com", "booking-confirmed")]
    assert len(runs_of_function(stack, AWAIT_PAYMENT)) == 1


async def test_a_duplicate_approval_leaves_the_waiting_run_waiting(stack: Stack) -> None:
    services.seed("bookings", "b-1", APPROVED)
    await stack.start_worker(await_payment.fm)

    approved = await stack.send("booking.approved", {"bookingId": "b-1", "paymentTimeout": 30})
    await stack.wait_run(approved, "WAITING", function_id=AWAIT_PAYMENT)
    await stack.send("booking.approved", {"bookingId": "b-1", "paymentTimeout": 30})
    await asyncio.sleep(1)

    assert status(stack, approved) == "WAITING"


async def test_approved_booking_is_cancelled_when_no_payment_arrives_in_time(
    stack: Stack,
) -> None:
    services.seed("bookings", "b-1", APPROVED)
    await stack.start_worker(await_payment.fm)

    approved = await stack.send("booking.approved", {"bookingId": "b-1", "paymentTimeout": 2})
    await stack.wait_run(approved, "WAITING", function_id=AWAIT_PAYMENT)
    await stack.send("payment.completed", paid("b-2"))
    run = await stack.wait_run(approved, timeout=20, function_id=AWAIT_PAYMENT)

    assert run[3] == {"bookingId": "b-1", "status": "cancelled"}
    booking = row("bookings", "b-1")
    assert (booking["status"], booking["cancelReason"]) == ("cancelled", "payment-timeout")
    assert emails() == [("guest@example.com", "booking-cancelled-unpaid")]
    # A payment after the timeout changes nothing.
    await stack.send("payment.completed", paid("b-1"))
    await asyncio.sleep(0.5)
    assert services.count("db.bookings.put") == 1
    assert services.count("email.send") == 1


async def test_a_cancelled_booking_stops_the_wait(stack: Stack) -> None:
    services.seed("bookings", "b-1", APPROVED)
    await stack.start_worker(await_payment.fm)

    approved = await stack.send("booking.approved", {"bookingId": "b-1", "paymentTimeout": 30})
    await stack.wait_run(approved, "WAITING", function_id=AWAIT_PAYMENT)
    await stack.send("booking.cancelled", {"bookingId": "b-2"})
    await asyncio.sleep(0.5)
    assert status(stack, approved) == "WAITING"

    await stack.send("booking.cancelled", {"bookingId": "b-1"})
    await stack.wait_run(approved, "CANCELLED", function_id=AWAIT_PAYMENT)
    await stack.send("payment.completed", paid("b-1"))
    await asyncio.sleep(0.7)

    assert status(stack, approved) == "CANCELLED"
    assert services.count("db.bookings.put") == 0
    assert emails() == []


# -- 9. order fulfilment ---------------------------------------------------------------------

ORDER = {
    "customerEmail": "ada@example.com", "items": [{"sku": "mug", "quantity": 2}],
    "total": 3000, "currency": "EUR",
}  # fmt: skip
FULFIL_ORDER = "order-fulfilment-fulfil-order"


def label(order_id: str, tracking: str = "TN-1") -> dict[str, Any]:
    return {"orderId": order_id, "trackingNumber": tracking}


async def test_order_fans_out_then_ships_when_its_label_is_created(stack: Stack) -> None:
    services.seed("orders", "o-1", ORDER)
    await stack.start_worker(order_fulfilment.fm)

    placed = await stack.send("shop/order.placed", {"orderId": "o-1", "shippingTimeout": 30})
    await stack.wait_run(placed, "WAITING", function_id=FULFIL_ORDER)
    # The three fanned-out events each ran their own function while this one waits.
    await ledger_has("email.send", template="order-received", to="ada@example.com")
    await ledger_has("inventory.reserve", order_id="o-1")
    await ledger_has("analytics.track", name="order placed")
    [reserve] = services.calls("inventory.reserve")
    assert reserve["items"] == ORDER["items"]

    await stack.send("shipping/label-created", label("o-2", "TN-other"))
    await stack.send("shipping/label-voided", {"orderId": "o-1"})
    await asyncio.sleep(0.7)
    assert status(stack, placed) == "WAITING"

    await stack.send("shipping/label-created", label("o-1"))
    run = await stack.wait_run(placed, function_id=FULFIL_ORDER)
    await ledger_has("email.send", template="order-shipped")

    assert run[3] == {"orderId": "o-1", "status": "shipped", "trackingNumber": "TN-1"}
    assert (row("orders", "o-1")["status"], row("orders", "o-1")["trackingNumber"]) == (
        "shipped",
        "TN-1",
    )
    [shipped] = services.calls("email.send", template="order-shipped")
    assert shipped["context"] == {"orderId": "o-1", "trackingNumber": "TN-1"}
    await asyncio.sleep(0.3)
    assert services.count("email.send") == 2
    assert services.count("inventory.reserve") == 1
    assert services.count("analytics.track") == 1
    assert services.count("ops.alert") == 0
    by_function = {
        fn: [r[1] for r in runs_of_function(stack, f"order-fulfilment-{fn}")]
        for fn in ("send-email", "reserve-inventory", "track-analytics")
    }
    assert by_function == {
        "send-email": ["COMPLETED", "COMPLETED"],
        "reserve-inventory": ["COMPLETED"],
        "track-analytics": ["COMPLETED"],
    }


async def test_order_without_a_label_in_time_is_delayed_and_operations_alerted(
    stack: Stack,
) -> None:
    services.seed("orders", "o-1", ORDER)
    await stack.start_worker(order_fulfilment.fm)
    await stack.send("shipping/label-created", label("o-1", "TN-early"))  # before the wait
    await asyncio.sleep(0.3)

    placed = await stack.send("shop/order.placed", {"orderId": "o-1", "shippingTimeout": 2})
    await stack.wait_run(placed, "WAITING", function_id=FULFIL_ORDER)
    await stack.send("shipping/label-created", label("o-2"))
    run = await stack.wait_run(placed, timeout=20, function_id=FULFIL_ORDER)
    await ledger_has("email.send", template="order-delayed", to="ada@example.com")

    assert run[3] == {"orderId": "o-1", "status": "delayed"}
    assert row("orders", "o-1")["status"] == "delayed"
    [alert] = services.calls("ops.alert")
    assert "order o-1 has no shipping label after 2" in alert["summary"]
    assert services.count("email.send", template="order-shipped") == 0
    assert emails() == [
        ("ada@example.com", "order-delayed"),
        ("ada@example.com", "order-received"),
    ]
