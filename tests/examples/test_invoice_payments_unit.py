"""The invoice example: sleep until the billing date, then charge, mark paid, send receipt."""

from __future__ import annotations

from datetime import timedelta

from examples import invoice_payments, services
from ferryman.testing import run_function

EVENT = {
    "name": "api/invoice.created",
    "data": {
        "invoiceId": "inv-1", "customerId": "c-1", "email": "billing@example.com",
        "amount": 9900, "currency": "EUR", "billingDate": "2026-02-01T09:00:00+00:00",
    },
}  # fmt: skip


async def test_the_invoice_is_charged_on_its_billing_date_and_receipted() -> None:
    # The in-memory runtime starts its clock at 2026-01-01T00:00Z.
    result = await run_function(invoice_payments.pay_invoice, EVENT)

    assert result.status == "COMPLETED"
    assert result.elapsed == timedelta(days=31, hours=9)
    assert services.count("payments.charge", key="invoice-inv-1", amount=9900) == 1
    assert services.db_get("invoices", "inv-1")["status"] == "paid"
    [receipt] = services.calls("email.send")
    assert receipt["template"] == "invoice-receipt"
    assert receipt["to"] == "billing@example.com"


async def test_a_past_billing_date_charges_at_once() -> None:
    event = {**EVENT, "data": {**EVENT["data"], "billingDate": "2025-12-01T00:00:00Z"}}

    result = await run_function(invoice_payments.pay_invoice, event)

    assert result.status == "COMPLETED"
    assert result.elapsed == timedelta(0)
    assert services.count("payments.charge") == 1


async def test_a_declined_receipt_email_does_not_charge_twice() -> None:
    services.script("email.send", fail=1)

    result = await run_function(invoice_payments.pay_invoice, EVENT)

    assert result.status == "COMPLETED"
    assert services.count("payments.charge") == 1
    assert services.count("db.invoices.put") == 1
    assert services.count("email.send") == 1
