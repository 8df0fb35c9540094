"""Robust external call: retries with exponential backoff, and errors sorted by kind.

Send::

    {"name": "listing.sync.requested", "data": {"listingId": "l-1", "price": 120}}

Steps and their side effects (see :mod:`examples.services`):

- ``fetch-listing``: ``partner.get`` on ``/listings/l-1``, with the function's 5 retries,
  backoff 1 s, 2 s, 4 s ... capped at 1 h. A 429 answer raises ``RetryAfterError`` (the
  next attempt waits what the partner asked); a 400 raises ``NonRetriableError`` (the run
  fails at once); a 503 is retried with backoff.
- ``push-update``: ``partner.put`` on the same path, at most 3 retries.
- ``notify-webhook``: ``partner.post`` on ``/webhooks/listing-synced``, no retry at all;
  it is best effort, so its failure is caught and the run still completes.

Script failures with e.g. ``services.script("partner.get", fail=2, error="rate_limited")``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import ferryman
from examples import services

fm = ferryman.Ferryman(app_id="robust-call")


def call_partner(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """Translate the partner's answers into Ferryman's retry decisions."""
    try:
        return services.partner_request(method, path, body)
    except services.RateLimited as exc:
        raise ferryman.RetryAfterError(str(exc), exc.retry_after) from exc
    except services.BadRequest as exc:
        raise ferryman.NonRetriableError(str(exc)) from exc
    # Anything else (a 503, a timeout) propagates and is retried with backoff.


@fm.function(
    id="sync-listing",
    trigger=ferryman.on_event("listing.sync.requested"),
    retries=5,
    backoff=ferryman.Backoff(initial=timedelta(seconds=1), factor=2, max=timedelta(hours=1)),
)
async def sync_listing(ctx: ferryman.Context) -> dict[str, Any]:
    listing_id = ctx.event.data["listingId"]
    path = f"/listings/{listing_id}"
    current = await ctx.step.run("fetch-listing", call_partner, "GET", path)
    pushed = await ctx.step.run(
        "push-update",
        call_partner,
        "PUT",
        path,
        {"price": ctx.event.data["price"]},
        retries=3,
    )
    try:
        await ctx.step.run(
            "notify-webhook",
            call_partner,
            "POST",
            "/webhooks/listing-synced",
            {"listingId": listing_id},
            retries=0,
        )
        notified = True
    except ferryman.StepError:
        notified = False  # best effort: the sync itself succeeded
    return {
        "listingId": listing_id,
        "etag": pushed["etag"],
        "previous": current["etag"],
        "notified": notified,
    }
