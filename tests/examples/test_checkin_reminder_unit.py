"""The check-in reminder: sleep until a day before check-in, then remind the guest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from examples import checkin_reminder, services
from ferryman.testing import InMemoryRuntime, run_function

EVENT = {
    "name": "booking.confirmed",
    "data": {"bookingId": "b-1", "guestEmail": "guest@example.com",
             "checkIn": "2026-03-01T15:00:00+01:00"},
}  # fmt: skip


async def test_the_guest_is_reminded_a_day_before_check_in() -> None:
    runtime = InMemoryRuntime()

    result = await run_function(checkin_reminder.remind_guest, EVENT, runtime=runtime)

    assert result.status == "COMPLETED"
    assert runtime.now() == datetime(2026, 2, 28, 14, 0, tzinfo=UTC)
    assert result.steps["day-before-check-in"].wake_at == runtime.now()
    [reminder] = services.calls("email.send")
    assert (reminder["to"], reminder["template"]) == ("guest@example.com", "checkin-reminder")


async def test_a_check_in_less_than_a_day_away_reminds_at_once() -> None:
    event = {**EVENT, "data": {**EVENT["data"], "checkIn": "2026-01-01T12:00:00+00:00"}}

    result = await run_function(checkin_reminder.remind_guest, event)

    assert result.status == "COMPLETED"
    assert result.elapsed == timedelta(0)
    assert services.count("email.send", template="checkin-reminder") == 1
