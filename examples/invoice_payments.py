"""Invoice payments: sleep until the billing date, charge, mark paid, send a receipt.

Send::

    {"name": "api/invoice.created", "data": {"invoiceId": "inv-1", "customerId": "c-1",
     "email": "billing@example.com", "amount": 9900, "currency": "EUR",
     "billingDate": "2026-02-01T09:00:00+00:00"}}

The run sleeps until ``billingDate`` (a past date means at once), then, once each:
``payments.charge`` with ``key == "invoice-inv-1"``, ``db.invoices.put`` with
``status: "paid"``, and ``email.send`` with template ``invoice-receipt``.
"""

from __future__ import annotations

from typing import Any

import ferryman
from examples import services

fm = ferryman.Ferryman(app_id="invoice-payments")


def charge_invoice(invoice: dict[str, Any]) -> dict[str, Any]:
    return services.charge(
        invoice["customerId"],
        invoice["amount"],
        invoice["currency"],
        reference=f"invoice-{invoice['invoiceId']}",
    )


@fm.function(id="pay-invoice", trigger=ferryman.on_event("api/invoice.created"))
async def pay_invoice(ctx: ferryman.Context) -> dict[str, Any]:
    invoice = ctx.event.data
    await ctx.step.sleep_until("wait-for-billing-date", invoice["billingDate"])
    payment = await ctx.step.run("charge", charge_invoice, invoice)
    await ctx.step.run(
        "mark-paid",
        services.db_put,
        "invoices",
        invoice["invoiceId"],
        {"status": "paid", "chargeId": payment["charge_id"]},
    )
    await ctx.step.run(
        "send-receipt",
        services.send_email,
        invoice["email"],
        "invoice-receipt",
        {"invoiceId": invoice["invoiceId"], "amount": invoice["amount"]},
    )
    return {"invoiceId": invoice["invoiceId"], "chargeId": payment["charge_id"]}
