"""Scheduled jobs: a daily report, a weekly subscription check that fans out, a clean-up.

These run on cron; to drive one by hand, send the event a cron tick produces, e.g.
``{"name": "ferryman/scheduled.timer", "data": {}}`` to the function, or invoke it in a
test with :func:`ferryman.testing.run_function`.

- ``daily-report`` (09:00 Europe/Paris): ``jobs.collect-metrics`` then one ``email.send``
  with template ``daily-report`` to ``ops@example.com``.
- ``weekly-subscription-check`` (Mondays 08:00 UTC): reads the ``subscriptions`` table
  (seed it: ``python -m examples.services seed subscriptions s-1
  '{"email": "a@example.com", "renewsOn": "2026-01-08"}'``) and sends one
  ``subscription/reminder.requested`` event per subscription renewing within 7 days,
  in one ``send_event`` step (never twice); ``send-subscription-reminder`` answers each
  with one ``email.send`` (template ``subscription-reminder``).
- ``monthly-cleanup`` (03:00 UTC on the 1st): three steps, ``jobs.purge-sessions``,
  ``jobs.archive-bookings``, ``jobs.vacuum-storage``, once each.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import ferryman
from examples import services

fm = ferryman.Ferryman(app_id="scheduled-jobs")

REMINDER_EVENT = "subscription/reminder.requested"


def collect_metrics(day: str) -> dict[str, Any]:
    bookings = services.db_all("bookings")
    confirmed = sum(1 for b in bookings.values() if b.get("status") == "confirmed")
    return services.task(
        "collect-metrics", {"day": day, "bookings": len(bookings), "confirmed": confirmed}
    )


@fm.function(id="daily-report", trigger=ferryman.on_cron("0 9 * * *", timezone="Europe/Paris"))
async def daily_report(ctx: ferryman.Context) -> dict[str, Any]:
    # The event's timestamp, not the clock: replays must compute the same day.
    day = _event_day(ctx)
    metrics: dict[str, Any] = await ctx.step.run("collect-metrics", collect_metrics, day)
    await ctx.step.run(
        "send-report",
        services.send_email,
        "ops@example.com",
        "daily-report",
        {"day": day, "confirmed": metrics["confirmed"]},
    )
    return metrics


def expiring_subscriptions(today: str, within_days: int) -> list[dict[str, Any]]:
    horizon = (date.fromisoformat(today) + timedelta(days=within_days)).isoformat()
    return [
        {"subscriptionId": sid, **sub}
        for sid, sub in services.db_all("subscriptions").items()
        if today <= sub["renewsOn"] <= horizon
    ]


@fm.function(id="weekly-subscription-check", trigger=ferryman.on_cron("0 8 * * 1"))
async def weekly_subscription_check(ctx: ferryman.Context) -> dict[str, Any]:
    expiring = await ctx.step.run("load-expiring", expiring_subscriptions, _event_day(ctx), 7)
    ids: list[str] = []
    if expiring:
        ids = await ctx.step.send_event(
            "fan-out-reminders", [{"name": REMINDER_EVENT, "data": sub} for sub in expiring]
        )
    return {"reminders": len(ids), "eventIds": ids}


@fm.function(id="send-subscription-reminder", trigger=ferryman.on_event(REMINDER_EVENT))
async def send_subscription_reminder(ctx: ferryman.Context) -> None:
    sub = ctx.event.data
    await ctx.step.run(
        "email",
        services.send_email,
        sub["email"],
        "subscription-reminder",
        {"subscriptionId": sub["subscriptionId"], "renewsOn": sub["renewsOn"]},
    )


@fm.function(id="monthly-cleanup", trigger=ferryman.on_cron("0 3 1 * *"))
async def monthly_cleanup(ctx: ferryman.Context) -> dict[str, Any]:
    sessions = await ctx.step.run(
        "purge-sessions", services.task, "purge-sessions", {"olderThanDays": 30}
    )
    archived = await ctx.step.run(
        "archive-bookings", services.task, "archive-bookings", {"olderThanDays": 365}
    )
    vacuumed = await ctx.step.run("vacuum-storage", services.task, "vacuum-storage")
    return {"steps": [sessions["job"], archived["job"], vacuumed["job"]]}


def _event_day(ctx: ferryman.Context) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ctx.event.ts / 1000, UTC).date().isoformat()
