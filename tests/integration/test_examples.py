"""Every example app, end to end: a real worker, NATS JetStream and PostgreSQL.

Each test sends the event an example's docstring names (or, for cron functions, lets a
missed tick fire) and checks the side effects in the ledger of ``examples.services``:
what was called, how often, and when. ``tests/examples/test_*_unit.py`` check the same
behaviour under the in-memory runtime; here the runs go through JetStream consumers,
PostgreSQL checkpoints, JetStream timers and the repair sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from examples import (
    batch_scoring,
    bookings,
    checkin_reminder,
    invoice_payments,
    robust_call,
    scheduled_jobs,
    services,
    video_processing,
    welcome_series,
)
from tests.harness import Stack, wait_for

pytestmark = pytest.mark.integration

# -- helpers ------------------------------------------------------------------------------


def steps(stack: Stack, run_id: str) -> dict[str, dict[str, Any]]:
    """The run's steps by id: status, attempts, op, output, error, wake_at, started_at."""
    rows = stack.query(
        "SELECT step_id, status, attempts, op, output, error, wake_at, started_at "
        "FROM steps WHERE run_id = %s",
        run_id,
    )
    keys = ("status", "attempts", "op", "output", "error", "wake_at", "started_at")
    return {r[0]: dict(zip(keys, r[1:], strict=True)) for r in rows}


def failed_attempts(stack: Stack, run_id: str, step_id: str) -> int:
    [(n,)] = stack.query(
        "SELECT count(*) FROM step_attempts WHERE run_id = %s AND step_id = %s", run_id, step_id
    )
    return int(n)


def runs_of_function(stack: Stack, function_id: str) -> list[tuple[Any, ...]]:
    return stack.query(
        "SELECT id, status, output, error, event_ids FROM runs WHERE function_id = %s "
        "ORDER BY created_at",
        function_id,
    )


async def wait_function_run(
    stack: Stack, function_id: str, status: str = "COMPLETED", timeout: float = 20
) -> tuple[Any, ...]:
    """The one run of ``function_id`` (a cron function has no event of ours to wait on)."""
    await wait_for(
        lambda: any(r[1] == status for r in runs_of_function(stack, function_id)),
        timeout,
        lambda: f"{function_id} never {status}: {runs_of_function(stack, function_id)}",
    )
    [run] = [r for r in runs_of_function(stack, function_id) if r[1] == status]
    return run


async def wait_failure_handler(
    stack: Stack, failed_run_id: str, function_id: str, timeout: float = 20
) -> tuple[Any, ...]:
    """The run of ``function_id``'s on_failure handler for the failed run ``failed_run_id``."""
    return await stack.wait_run(
        f"ferryman/function.failed:{failed_run_id}",
        timeout=timeout,
        function_id=f"{function_id}-failure",
    )


def ts(record: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(record["ts"], UTC)


def gaps(records: list[dict[str, Any]]) -> list[float]:
    """Seconds between consecutive ledger records."""
    return [b["ts"] - a["ts"] for a, b in itertools.pairwise(records)]


def db_row(table: str, id: str) -> dict[str, Any]:
    """Row ``id`` of the stand-in database, which must exist."""
    doc = services.db_get(table, id)
    assert doc is not None, f"no {table} row {id!r}"
    return doc


def emails() -> set[tuple[str, str]]:
    return {(c["to"], c["template"]) for c in services.calls("email.send")}


# -- video processing ---------------------------------------------------------------------

VIDEO = {"videoId": "v-1", "url": "s3://videos/v-1.mp4"}


async def test_video_is_transcribed_summarized_and_saved_once_each(stack: Stack) -> None:
    await stack.start_worker(video_processing.fm)

    event = await stack.send("video.uploaded", VIDEO)
    run = await stack.wait_run(event, function_id="video-processing-process-video")

    assert services.count("llm.transcribe", video_url=VIDEO["url"]) == 1
    assert services.count("llm.summarize") == 1
    assert services.count("db.videos.put", id="v-1") == 1
    saved = services.db_get("videos", "v-1")
    assert saved == {
        "url": "s3://videos/v-1.mp4",
        "transcript": "transcript of s3://videos/v-1.mp4",
        "summary": "summary: transcript of s3://videos/v-1.mp4",
    }
    assert run[3] == {"videoId": "v-1", "summary": saved["summary"]}
    assert {s: row["status"] for s, row in steps(stack, run[0]).items()} == {
        "transcribe": "COMPLETED",
        "summarize": "COMPLETED",
        "write-to-db": "COMPLETED",
    }


async def test_video_summary_failing_twice_is_retried_alone(stack: Stack) -> None:
    services.script("llm.summarize", fail=2)
    await stack.start_worker(video_processing.fm)

    event = await stack.send("video.uploaded", VIDEO)
    run = await stack.wait_run(event, function_id="video-processing-process-video")

    assert len(services.attempts("llm.summarize")) == 3
    assert services.count("llm.summarize") == 1
    assert len(services.attempts("llm.transcribe")) == 1, "transcription is not repeated"
    assert services.count("db.videos.put") == 1
    done = steps(stack, run[0])
    assert (done["transcribe"]["attempts"], done["summarize"]["attempts"]) == (1, 3)
    assert failed_attempts(stack, run[0], "summarize") == 2
    # The default backoff: 1 s then 2 s, each shortened by at most 20 % jitter.
    first, second = gaps(services.attempts("llm.summarize"))
    assert first >= 0.8
    assert second >= 1.6


# -- invoice payments ---------------------------------------------------------------------


async def test_invoice_is_charged_on_its_billing_date_then_marked_paid_and_receipted(
    stack: Stack,
) -> None:
    await stack.start_worker(invoice_payments.fm)
    billing = datetime.now(UTC) + timedelta(seconds=3)
    invoice = {
        "invoiceId": "inv-1",
        "customerId": "c-1",
        "email": "billing@example.com",
        "amount": 9900,
        "currency": "EUR",
        "billingDate": billing.isoformat(),
    }

    event = await stack.send("api/invoice.created", invoice)
    sleeping = await stack.wait_run(event, status="SLEEPING", timeout=10)
    wait = steps(stack, sleeping[0])["wait-for-billing-date"]
    assert (wait["status"], wait["wake_at"]) == ("SLEEPING", billing)
    assert services.count("payments.charge") == 0

    run = await stack.wait_run(event, timeout=20)

    [charge] = services.calls("payments.charge")
    assert (charge["key"], charge["customer"], charge["amount"], charge["currency"]) == (
        "invoice-inv-1",
        "c-1",
        9900,
        "EUR",
    )
    assert ts(charge) >= billing, "charged before the billing date"
    assert services.db_get("invoices", "inv-1") == {
        "status": "paid",
        "chargeId": run[3]["chargeId"],
    }
    [receipt] = services.calls("email.send")
    assert (receipt["to"], receipt["template"]) == ("billing@example.com", "invoice-receipt")
    assert receipt["context"] == {"invoiceId": "inv-1", "amount": 9900}
    assert run[3] == {"invoiceId": "inv-1", "chargeId": run[3]["chargeId"]}
    assert run[3]["chargeId"].startswith("ch_")


# -- bookings -----------------------------------------------------------------------------

BOOKING = {
    "status": "pending", "room": "r-7", "checkIn": "2026-03-01", "checkOut": "2026-03-04",
    "amount": 42000, "currency": "EUR",
    "guestEmail": "guest@example.com", "hostEmail": "host@example.com",
}  # fmt: skip
PROCESS_BOOKING = "bookings-process-booking"


async def test_pending_booking_is_charged_confirmed_and_both_sides_notified(
    stack: Stack,
) -> None:
    services.seed("bookings", "b-1", BOOKING)
    await stack.start_worker(bookings.fm)

    event = await stack.send("booking.created", {"bookingId": "b-1"})
    run = await stack.wait_run(event, function_id=PROCESS_BOOKING)

    assert run[3]["status"] == "confirmed"
    assert services.count("calendar.check", room="r-7") == 1
    [charge] = services.calls("payments.charge")
    assert (charge["key"], charge["amount"], charge["currency"]) == ("booking-b-1", 42000, "EUR")
    [block] = services.calls("calendar.block")
    assert (block["room"], block["check_in"], block["check_out"], block["booking_id"]) == (
        "r-7",
        "2026-03-01",
        "2026-03-04",
        "b-1",
    )
    assert db_row("bookings", "b-1")["status"] == "confirmed"
    assert db_row("bookings", "b-1")["chargeId"] == run[3]["chargeId"]
    assert emails() == {
        ("guest@example.com", "booking-confirmed-guest"),
        ("host@example.com", "booking-confirmed-host"),
    }
    assert services.count("email.send") == 2
    assert services.count("ops.alert") == 0
    assert set(steps(stack, run[0])) == {
        "validate",
        "check-availability",
        "take-payment",
        "confirm",
        "notify-guest",
        "notify-host",
    }


async def test_booking_payment_failing_twice_is_retried_alone_and_charged_once(
    stack: Stack,
) -> None:
    services.seed("bookings", "b-1", BOOKING)
    services.script("payments.charge", fail=2, error="unavailable")
    await stack.start_worker(bookings.fm)

    event = await stack.send("booking.created", {"bookingId": "b-1"})
    run = await stack.wait_run(event, function_id=PROCESS_BOOKING)

    assert steps(stack, run[0])["take-payment"]["attempts"] == 3
    assert len(services.attempts("payments.charge")) == 3
    assert services.count("payments.charge") == 1
    assert services.count("calendar.check") == 1, "the step before it is not re-run"
    assert services.count("email.send") == 2


async def test_missing_booking_fails_without_retrying_and_operations_are_alerted(
    stack: Stack,
) -> None:
    await stack.start_worker(bookings.fm)

    event = await stack.send("booking.created", {"bookingId": "b-1"})
    run = await stack.wait_run(event, status="FAILED", function_id=PROCESS_BOOKING)

    assert run[4]["name"] == "StepError"
    assert "'b-1' does not exist" in run[4]["message"]
    validate = steps(stack, run[0])["validate"]
    assert (validate["status"], validate["attempts"]) == ("FAILED", 1)
    assert set(steps(stack, run[0])) == {"validate"}
    assert services.count("payments.charge") == 0

    handler = await wait_failure_handler(stack, run[0], PROCESS_BOOKING)
    assert steps(stack, handler[0])["alert-operations"]["status"] == "COMPLETED"
    [alert] = services.calls("ops.alert")
    assert alert["summary"].startswith("booking b-1 failed: ")
    assert "'b-1' does not exist" in alert["summary"]


async def test_booking_that_is_not_pending_fails_and_operations_are_alerted(
    stack: Stack,
) -> None:
    services.seed("bookings", "b-1", {**BOOKING, "status": "cancelled"})
    await stack.start_worker(bookings.fm)

    event = await stack.send("booking.created", {"bookingId": "b-1"})
    run = await stack.wait_run(event, status="FAILED", function_id=PROCESS_BOOKING)

    assert "is 'cancelled', not 'pending'" in run[4]["message"]
    assert steps(stack, run[0])["validate"]["attempts"] == 1
    await wait_failure_handler(stack, run[0], PROCESS_BOOKING)
    [alert] = services.calls("ops.alert")
    assert alert["summary"].startswith("booking b-1 failed: ")
    assert "is 'cancelled', not 'pending'" in alert["summary"]
    assert services.count("payments.charge") == 0
    assert db_row("bookings", "b-1")["status"] == "cancelled"


async def test_unavailable_room_fails_at_once_charges_nothing_and_alerts(stack: Stack) -> None:
    services.seed("bookings", "b-1", BOOKING)
    services.calendar_block("r-7", "2026-03-03", "2026-03-05", "b-other")
    await stack.start_worker(bookings.fm)

    event = await stack.send("booking.created", {"bookingId": "b-1"})
    run = await stack.wait_run(event, status="FAILED", function_id=PROCESS_BOOKING)

    done = steps(stack, run[0])
    assert (done["check-availability"]["status"], done["check-availability"]["attempts"]) == (
        "FAILED",
        1,
    )
    assert done["check-availability"]["error"]["name"] == "NonRetriableError"
    assert "take-payment" not in done
    assert "room 'r-7' is not available" in run[4]["message"]
    assert len(services.attempts("calendar.check")) == 1
    assert services.count("payments.charge") == 0
    assert services.count("calendar.block", booking_id="b-1") == 0
    assert services.count("email.send") == 0

    await wait_failure_handler(stack, run[0], PROCESS_BOOKING)
    [alert] = services.calls("ops.alert")
    assert alert["summary"].startswith("booking b-1 failed: ")
    assert "room 'r-7' is not available from 2026-03-01 to 2026-03-04" in alert["summary"]
    await asyncio.sleep(0.5)
    assert len(stack.runs_of(event)) == 1, "a non-retriable failure starts no second attempt"


# -- check-in reminder --------------------------------------------------------------------


async def test_guest_is_reminded_a_day_before_check_in(stack: Stack) -> None:
    await stack.start_worker(checkin_reminder.fm)
    paris = timezone(timedelta(hours=1))
    check_in = datetime.now(paris) + timedelta(days=1, seconds=3)
    remind_at = check_in - timedelta(days=1)
    data = {"bookingId": "b-1", "guestEmail": "guest@example.com", "checkIn": check_in.isoformat()}

    event = await stack.send("booking.confirmed", data)
    sleeping = await stack.wait_run(event, status="SLEEPING", timeout=10)
    assert steps(stack, sleeping[0])["day-before-check-in"]["wake_at"] == remind_at
    assert services.count("email.send") == 0

    run = await stack.wait_run(event, timeout=20)

    [reminder] = services.calls("email.send")
    assert (reminder["to"], reminder["template"]) == ("guest@example.com", "checkin-reminder")
    assert reminder["context"] == {"bookingId": "b-1", "checkIn": check_in.isoformat()}
    assert ts(reminder) >= remind_at, "reminded before the day before check-in"
    assert run[3] == {"bookingId": "b-1", "remindedAt": remind_at.isoformat()}


async def test_check_in_less_than_a_day_away_is_reminded_at_once(stack: Stack) -> None:
    await stack.start_worker(checkin_reminder.fm)
    check_in = datetime.now(UTC) + timedelta(hours=2)

    event = await stack.send(
        "booking.confirmed",
        {"bookingId": "b-2", "guestEmail": "late@example.com", "checkIn": check_in.isoformat()},
    )
    run = await stack.wait_run(event, timeout=10)

    assert emails() == {("late@example.com", "checkin-reminder")}
    sleep = steps(stack, run[0])["day-before-check-in"]
    assert (sleep["status"], sleep["wake_at"]) == ("COMPLETED", None), "no sleep was needed"
    assert stack.query("SELECT count(*) FROM timers WHERE run_id = %s", run[0]) == [(0,)]


# -- batch scoring ------------------------------------------------------------------------

PROPERTY_IDS = [f"p-{i}" for i in range(12)]
BATCH = {"orgId": "org-1", "batchId": "batch-1", "propertyIds": PROPERTY_IDS}


async def test_batch_scores_every_property_once_and_reports_the_aggregate(stack: Stack) -> None:
    await stack.start_worker(batch_scoring.fm)

    event = await stack.send("properties.batch.process", BATCH)
    run = await stack.wait_run(event, function_id="batch-scoring-score-batch")

    assert sorted(c["property_id"] for c in services.calls("ml.score")) == sorted(PROPERTY_IDS)
    assert len(services.attempts("ml.score")) == 12
    done = steps(stack, run[0])
    scores = {pid: done[f"score-{pid}"]["output"] for pid in PROPERTY_IDS}
    assert all(isinstance(v, int) and 0 <= v < 100 for v in scores.values())
    [report_put] = services.calls("db.reports.put")
    report = db_row("reports", "batch-1")
    assert report == report_put["doc"] == run[3]
    assert report["count"] == 12
    assert report["scores"] == scores
    assert report["average"] == round(sum(scores.values()) / 12, 2)


async def test_batch_with_one_failing_property_rescored_alone(stack: Stack) -> None:
    services.script("ml.score", key="p-3", fail=1)
    await stack.start_worker(batch_scoring.fm)

    event = await stack.send("properties.batch.process", BATCH)
    run = await stack.wait_run(event, function_id="batch-scoring-score-batch")

    assert len(services.attempts("ml.score", property_id="p-3")) == 2
    for pid in PROPERTY_IDS:
        assert services.count("ml.score", property_id=pid) == 1, pid
    assert len(services.attempts("ml.score")) == 13, "only p-3 was scored again"
    assert steps(stack, run[0])["score-p-3"]["attempts"] == 2
    assert services.count("db.reports.put") == 1
    assert run[3]["count"] == 12


async def test_per_org_batches_are_scored_under_a_concurrency_key(stack: Stack) -> None:
    await stack.start_worker(batch_scoring.fm)

    events = [
        await stack.send(
            "properties.org-batch.process",
            {"orgId": org, "batchId": f"batch-{org}", "propertyIds": ids},
        )
        for org, ids in [("org-1", ["p-1", "p-2"]), ("org-2", ["p-3", "p-4", "p-5"])]
    ]
    runs = [
        await stack.wait_run(e, function_id="batch-scoring-score-batch-per-org") for e in events
    ]

    assert [r[3]["count"] for r in runs] == [2, 3]
    assert set(services.db_all("reports")) == {"batch-org-1", "batch-org-2"}
    assert len(services.attempts("ml.score")) == 5
    assert runs_of_function(stack, "batch-scoring-score-batch") == []


# -- robust external call -----------------------------------------------------------------

LISTING = {"listingId": "l-1", "price": 120}
PATH = "/listings/l-1"
SYNC_LISTING = "robust-call-sync-listing"


async def test_healthy_partner_is_called_once_per_step(stack: Stack) -> None:
    await stack.start_worker(robust_call.fm)

    event = await stack.send("listing.sync.requested", LISTING)
    run = await stack.wait_run(event, function_id=SYNC_LISTING)

    assert services.count("partner.get", path=PATH) == 1
    [put] = services.calls("partner.put", path=PATH)
    assert put["body"] == {"price": 120}
    [post] = services.calls("partner.post", path="/webhooks/listing-synced")
    assert post["body"] == {"listingId": "l-1"}
    assert run[3]["notified"] is True
    done = steps(stack, run[0])
    assert run[3]["etag"] == done["push-update"]["output"]["etag"]
    assert run[3]["previous"] == done["fetch-listing"]["output"]["etag"]


async def test_rate_limited_partner_is_retried_after_what_it_asked(stack: Stack) -> None:
    services.script("partner.get", fail=2, error="rate_limited", retry_after=1.5)
    await stack.start_worker(robust_call.fm)

    event = await stack.send("listing.sync.requested", LISTING)
    run = await stack.wait_run(event, function_id=SYNC_LISTING)

    fetch = services.attempts("partner.get")
    assert [a["outcome"] for a in fetch] == ["rate_limited", "rate_limited", "ok"]
    assert all(gap >= 1.45 for gap in gaps(fetch)), gaps(fetch)  # retry_after, no jitter
    assert steps(stack, run[0])["fetch-listing"]["attempts"] == 3
    assert failed_attempts(stack, run[0], "fetch-listing") == 2
    assert services.count("partner.put") == 1
    assert run[3]["notified"] is True


async def test_bad_request_fails_the_run_at_once(stack: Stack) -> None:
    services.script("partner.get", fail=1, error="bad_request")
    await stack.start_worker(robust_call.fm)

    event = await stack.send("listing.sync.requested", LISTING)
    run = await stack.wait_run(event, status="FAILED", function_id=SYNC_LISTING)

    assert run[4]["name"] == "StepError"
    assert "(400)" in run[4]["message"]
    fetch = steps(stack, run[0])["fetch-listing"]
    assert (fetch["status"], fetch["attempts"]) == ("FAILED", 1)
    assert fetch["error"]["name"] == "NonRetriableError"
    assert len(services.attempts("partner.get")) == 1
    assert services.count("partner.put") == 0
    assert services.count("partner.post") == 0


async def test_unavailable_partner_backs_off_and_a_failed_webhook_is_tolerated(
    stack: Stack,
) -> None:
    services.script("partner.put", fail=2)  # 503 twice: backoff 1 s, 2 s
    services.script("partner.post", fail=1)  # the best-effort webhook: no retry
    await stack.start_worker(robust_call.fm)

    event = await stack.send("listing.sync.requested", LISTING)
    run = await stack.wait_run(event, function_id=SYNC_LISTING)

    put = services.attempts("partner.put")
    assert [a["outcome"] for a in put] == ["unavailable", "unavailable", "ok"]
    first, second = gaps(put)
    assert first >= 0.8, gaps(put)
    assert second >= 1.6, gaps(put)
    assert services.count("partner.get") == 1, "the fetch is not repeated"
    assert len(services.attempts("partner.post")) == 1
    done = steps(stack, run[0])
    assert (done["push-update"]["attempts"], done["notify-webhook"]["status"]) == (3, "FAILED")
    assert run[3]["notified"] is False


# -- scheduled jobs -----------------------------------------------------------------------

CRON_FUNCTIONS = {
    f"scheduled-jobs-{name}"
    for name in ("daily-report", "weekly-subscription-check", "monthly-cleanup")
}


async def fire_missed_tick(stack: Stack, function_id: str) -> tuple[Any, ...]:
    """Start a worker that finds ``function_id``'s tick missed: it fires once, at once."""
    stack.query(
        "INSERT INTO cron_ticks (function_id, last_tick) VALUES (%s, %s) RETURNING 1",
        function_id,
        datetime.now(UTC) - timedelta(days=40),
    )
    await stack.start_worker(scheduled_jobs.fm)
    run = await wait_function_run(stack, function_id)
    others = {r[0] for f in CRON_FUNCTIONS - {function_id} for r in runs_of_function(stack, f)}
    assert not others, "a cron function seen for the first time fires nothing"
    return run


def tick_day(stack: Stack, run: tuple[Any, ...]) -> str:
    """The day of the tick's event (what the function computes its dates from)."""
    [(ts_ms,)] = stack.query("SELECT ts FROM events WHERE id = %s", run[4][0])
    return datetime.fromtimestamp(ts_ms / 1000, UTC).date().isoformat()


async def test_daily_report_collects_metrics_and_emails_operations(stack: Stack) -> None:
    services.seed("bookings", "b-1", {"status": "confirmed"})
    services.seed("bookings", "b-2", {"status": "pending"})

    run = await fire_missed_tick(stack, "scheduled-jobs-daily-report")

    day = tick_day(stack, run)
    assert run[2] == {
        "job": "collect-metrics",
        "done": True,
        "day": day,
        "bookings": 2,
        "confirmed": 1,
    }
    assert services.count("jobs.collect-metrics") == 1
    [report] = services.calls("email.send")
    assert (report["to"], report["template"]) == ("ops@example.com", "daily-report")
    assert report["context"] == {"day": day, "confirmed": 1}


async def test_weekly_check_fans_out_one_reminder_per_renewal_this_week(stack: Stack) -> None:
    today = datetime.now(UTC).date()
    for sid, email, days in [
        ("s-1", "a@example.com", 1),
        ("s-2", "b@example.com", 7),
        ("s-3", "c@example.com", 30),
        ("s-4", "d@example.com", -1),
    ]:
        renews = (today + timedelta(days=days)).isoformat()
        services.seed("subscriptions", sid, {"email": email, "renewsOn": renews})

    run = await fire_missed_tick(stack, "scheduled-jobs-weekly-subscription-check")

    assert tick_day(stack, run) == today.isoformat()
    assert run[2]["reminders"] == 2
    fan_out = steps(stack, run[0])["fan-out-reminders"]
    assert (fan_out["op"], fan_out["attempts"]) == ("send_event", 1)
    sent = stack.query(
        "SELECT id, name, data->>'subscriptionId' FROM events WHERE id = ANY(%s) "
        "ORDER BY data->>'subscriptionId'",
        run[2]["eventIds"],
    )
    assert [(name, sid) for _, name, sid in sent] == [
        (scheduled_jobs.REMINDER_EVENT, "s-1"),
        (scheduled_jobs.REMINDER_EVENT, "s-2"),
    ]
    for event_id in run[2]["eventIds"]:
        await stack.wait_run(event_id, function_id="scheduled-jobs-send-subscription-reminder")
    assert emails() == {
        ("a@example.com", "subscription-reminder"),
        ("b@example.com", "subscription-reminder"),
    }
    assert services.count("email.send") == 2
    assert len(runs_of_function(stack, "scheduled-jobs-send-subscription-reminder")) == 2


async def test_monthly_cleanup_runs_its_three_steps_once_each(stack: Stack) -> None:
    services.script("jobs.vacuum-storage", fail=1)

    run = await fire_missed_tick(stack, "scheduled-jobs-monthly-cleanup")

    assert run[2] == {"steps": ["purge-sessions", "archive-bookings", "vacuum-storage"]}
    assert services.count("jobs.purge-sessions") == 1
    assert services.count("jobs.archive-bookings") == 1
    assert len(services.attempts("jobs.vacuum-storage")) == 2
    assert services.count("jobs.vacuum-storage") == 1
    assert services.calls("jobs.purge-sessions")[0]["details"] == {"olderThanDays": 30}
    assert steps(stack, run[0])["vacuum-storage"]["attempts"] == 2


# -- welcome series -----------------------------------------------------------------------


async def test_welcome_series_sleeps_three_days_off_the_worker_then_sends_tips(
    stack: Stack,
) -> None:
    services.seed("users", "u-1", {"id": "u-1", "email": "ada@example.com", "name": "Ada"})
    first = await stack.start_worker(welcome_series.fm)

    event = await stack.send("user/signup", {"userId": "u-1"})
    run = await stack.wait_run(event, status="SLEEPING", timeout=10)

    nap = steps(stack, run[0])["wait-3-days"]
    assert nap["status"] == "SLEEPING"
    assert abs(nap["wake_at"] - (nap["started_at"] + timedelta(days=3))) < timedelta(seconds=5)
    [(fire_at, fired_at)] = stack.query(
        "SELECT fire_at, fired_at FROM timers WHERE run_id = %s", run[0]
    )
    assert (fire_at, fired_at) == (nap["wake_at"], None)
    assert emails() == {("ada@example.com", "welcome")}
    [(lease_owner,)] = stack.query("SELECT lease_owner FROM runs WHERE id = %s", run[0])
    assert lease_owner is None, "a sleeping run is held by no worker"

    # The worker goes away; another takes over. Then three days pass, as far as the run
    # can tell: its timer (never fired by JetStream, three days out) is overdue for the
    # repair sweep, which re-arms it.
    await first.stop(grace=1)
    await stack.start_worker(welcome_series.fm)
    stack.query(
        "UPDATE steps SET wake_at = now() WHERE run_id = %s AND step_id = 'wait-3-days' "
        "RETURNING 1",
        run[0],
    )
    stack.query("UPDATE timers SET fire_at = now() WHERE run_id = %s RETURNING 1", run[0])
    assert services.count("email.send", template="onboarding-tips") == 0

    done = await stack.wait_run(event, timeout=20)

    assert done[3] == {"userId": "u-1", "emails": 2}
    assert emails() == {("ada@example.com", "welcome"), ("ada@example.com", "onboarding-tips")}
    assert services.count("email.send") == 2
    assert services.count("users.get", user_id="u-1") == 1, "the user is fetched once"
    assert steps(stack, run[0])["wait-3-days"]["status"] == "COMPLETED"
    [(fired_at,)] = stack.query("SELECT fired_at FROM timers WHERE run_id = %s", run[0])
    assert fired_at is not None


async def test_welcome_series_rejects_a_signup_without_a_user_id(stack: Stack) -> None:
    await stack.start_worker(welcome_series.fm)

    event = await stack.send("user/signup", {"user": "u-1"})
    run = await stack.wait_run(event, status="FAILED", timeout=10)

    assert "userId" in run[4]["message"]
    assert services.records("users.get") == []
    assert services.records("email.send") == []


# -- the worker around the examples -------------------------------------------------------


async def test_worker_stops_within_seconds_after_running_an_example(stack: Stack) -> None:
    worker = await stack.start_worker(video_processing.fm)
    event = await stack.send("video.uploaded", VIDEO)
    await stack.wait_run(event, function_id="video-processing-process-video")
    await asyncio.sleep(4)  # idle: the pull loops' 2 s fetches time out once or twice

    stopping = asyncio.create_task(worker.stop(grace=1))
    done, _ = await asyncio.wait({stopping}, timeout=5)
    if not done:  # nc.drain() swallows the cancellation, closes, and stop() finishes
        stopping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopping

    assert done, "Worker.stop() was still draining NATS 5 s later"
