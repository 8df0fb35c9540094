"""Check-in reminder: sleep until a day before check-in, then remind the guest.

Send::

    {"name": "booking.confirmed", "data": {"bookingId": "b-1",
     "guestEmail": "guest@example.com", "checkIn": "2026-03-01T15:00:00+01:00"}}

The run sleeps until 24 hours before ``checkIn`` (at once if that is already past), then
sends one ``email.send`` with template ``checkin-reminder`` to the guest.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import ferryman
from examples import services

fm = ferryman.Ferryman(app_id="checkin-reminder")


@fm.function(id="remind-guest", trigger=ferryman.on_event("booking.confirmed"))
async def remind_guest(ctx: ferryman.Context) -> dict[str, Any]:
    data = ctx.event.data
    # Deterministic: derived from the event only, so every replay computes the same time.
    remind_at = datetime.fromisoformat(data["checkIn"]) - timedelta(days=1)
    await ctx.step.sleep_until("day-before-check-in", remind_at)
    await ctx.step.run(
        "remind-guest",
        services.send_email,
        data["guestEmail"],
        "checkin-reminder",
        {"bookingId": data["bookingId"], "checkIn": data["checkIn"]},
    )
    return {"bookingId": data["bookingId"], "remindedAt": remind_at.isoformat()}
