"""Scheduled jobs: their schedules, a fan-out sent exactly once, and a three-step clean-up."""

from __future__ import annotations

from datetime import UTC, datetime

from examples import scheduled_jobs, services
from ferryman.testing import run_function

MONDAY = int(datetime(2026, 1, 5, 8, 0, tzinfo=UTC).timestamp() * 1000)
TICK = {"name": "ferryman/scheduled.timer", "data": {}, "ts": MONDAY}


def test_the_schedules_are_daily_weekly_and_monthly() -> None:
    [daily] = scheduled_jobs.daily_report.config.cron_triggers
    [weekly] = scheduled_jobs.weekly_subscription_check.config.cron_triggers
    [monthly] = scheduled_jobs.monthly_cleanup.config.cron_triggers

    assert (daily.cron, daily.timezone) == ("0 9 * * *", "Europe/Paris")
    assert weekly.cron == "0 8 * * 1"
    assert monthly.cron == "0 3 1 * *"


async def test_the_daily_report_collects_metrics_and_emails_ops() -> None:
    services.seed("bookings", "b-1", {"status": "confirmed"})
    services.seed("bookings", "b-2", {"status": "pending"})

    result = await run_function(scheduled_jobs.daily_report, TICK)

    assert result.status == "COMPLETED"
    assert result.output["day"] == "2026-01-05"
    assert (result.output["bookings"], result.output["confirmed"]) == (2, 1)
    [report] = services.calls("email.send")
    assert (report["to"], report["template"]) == ("ops@example.com", "daily-report")


async def test_the_weekly_check_fans_out_one_reminder_per_renewal_this_week() -> None:
    services.seed("subscriptions", "s-1", {"email": "a@example.com", "renewsOn": "2026-01-08"})
    services.seed("subscriptions", "s-2", {"email": "b@example.com", "renewsOn": "2026-01-12"})
    services.seed("subscriptions", "s-3", {"email": "c@example.com", "renewsOn": "2026-03-01"})

    result = await run_function(scheduled_jobs.weekly_subscription_check, TICK)

    assert result.status == "COMPLETED"
    assert [e.data["subscriptionId"] for e in result.sent] == ["s-1", "s-2"]
    assert {e.name for e in result.sent} == {scheduled_jobs.REMINDER_EVENT}
    assert result.output["eventIds"] == [e.id for e in result.sent]

    for event in result.sent:
        reminded = await run_function(scheduled_jobs.send_subscription_reminder, event)
        assert reminded.status == "COMPLETED"
    assert {c["to"] for c in services.calls("email.send")} == {"a@example.com", "b@example.com"}


async def test_a_weekly_check_with_nothing_to_renew_sends_nothing() -> None:
    result = await run_function(scheduled_jobs.weekly_subscription_check, TICK)

    assert result.status == "COMPLETED"
    assert result.sent == []


async def test_the_monthly_cleanup_runs_its_three_steps_once_each() -> None:
    services.script("jobs.vacuum-storage", fail=1)

    result = await run_function(scheduled_jobs.monthly_cleanup, TICK)

    assert result.status == "COMPLETED"
    assert result.output == {"steps": ["purge-sessions", "archive-bookings", "vacuum-storage"]}
    assert services.count("jobs.purge-sessions") == 1
    assert services.count("jobs.archive-bookings") == 1
    assert services.count("jobs.vacuum-storage") == 1
