"""The console's scenarios in headless Chromium against `ferryman dev` (real PostgreSQL,
NATS, gateway and worker): what a person opening http://localhost:8288 would do."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.console.conftest import API_TOKEN, FUNCTIONS, WEBHOOK_SECRET, DevServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LIVE = 20_000  # ms the page may take to show a change without reloading


# Playwright's default (5 s) is a laptop's; a CI machine running the suite beside other
# jobs renders slower, and a too-short wait fails a console that works.
SETTLE = 15_000  # ms


def expect(target: Any) -> Any:
    from playwright.async_api import expect as _expect

    _expect.set_options(timeout=SETTLE)
    return _expect(target)


async def test_the_console_shows_the_example_apps_functions(page: Any, shots: Path) -> None:
    await page.goto("/")
    rows = page.get_by_test_id("function-row")
    await expect(page.locator('[data-function="bookings-process-booking"]')).to_be_visible()
    await expect(page.locator('[data-function="console-timed"]')).to_contain_text("console.timed")
    assert await rows.count() == FUNCTIONS
    await page.screenshot(path=str(shots / "functions.png"), full_page=True)


async def test_an_event_sent_from_the_form_runs_to_completed_without_reloading(
    page: Any, dev: DevServer, shots: Path
) -> None:
    await page.goto("/#/events")
    await page.get_by_test_id("event-name").fill("console.timed")
    await page.get_by_test_id("event-data").fill('{"seconds": 0.5, "failures": 1')
    await expect(page.get_by_test_id("json-status")).to_contain_text("Not valid")
    await expect(page.get_by_test_id("send-event")).to_be_disabled()
    await page.get_by_test_id("event-data").fill('{"seconds": 0.5, "failures": 1}')
    await page.get_by_test_id("send-event").click()
    # The sent event opens with its runs, polled: RUNNING (or already further), then COMPLETED.
    runs = page.get_by_test_id("event-runs")
    await expect(runs).to_contain_text("console-timed", timeout=LIVE)
    await expect(runs.get_by_test_id("status")).to_have_text("COMPLETED", timeout=LIVE)
    await page.screenshot(path=str(shots / "events.png"), full_page=True)

    # Its timeline: each step a bar with a real, non-zero duration.
    await runs.get_by_test_id("event-run").click()
    await expect(page.get_by_test_id("run-status")).to_have_text("COMPLETED")
    rows = page.get_by_test_id("timeline-row")
    await expect(rows).to_have_count(2)
    durations = {
        await row.get_attribute("data-step"): float(
            await row.get_by_test_id("step-duration").get_attribute("data-ms")
        )
        for row in await rows.all()
    }
    assert durations["slow"] >= 500
    assert durations["flaky"] > 0
    await page.locator('[data-step="flaky"]').click()
    attempts = page.get_by_test_id("attempt")
    await expect(attempts).to_have_count(2)
    await expect(attempts.nth(0).get_by_test_id("attempt-error")).to_contain_text(
        "flaky failure number 1"
    )
    await page.screenshot(path=str(shots / "run.png"), full_page=True)
    await page.get_by_test_id("theme").click()
    await page.screenshot(path=str(shots / "run-dark.png"), full_page=True)


async def test_a_failing_step_shows_every_attempts_error_and_replays_from_that_step(
    page: Any, dev: DevServer
) -> None:
    event_id = await dev.send("console.charge")
    failed = await dev.wait_run(event_id, "FAILED")
    await page.goto(f"/#/runs/{failed['run_id']}")
    await page.locator('[data-step="charge"]').click()
    errors = page.get_by_test_id("attempt-error")
    await expect(errors).to_have_count(2)
    for i in range(2):
        await expect(errors.nth(i)).to_contain_text("the payment provider is switched off")
    await expect(errors.nth(0)).to_contain_text("RuntimeError")

    # Switch the provider on, then replay from the failed step: "prepare" is not re-run.
    os.environ["FERRYMAN_EXAMPLES_LEDGER"] = str(dev.ledger)
    from examples import services

    services.db_put("switches", "charge", {"on": True})
    await page.get_by_test_id("replay-from-step").click()
    await expect(page.get_by_test_id("replay-of")).to_have_text(failed["run_id"], timeout=LIVE)
    await expect(page.get_by_test_id("run-status")).to_have_text("COMPLETED", timeout=LIVE)
    replay_id = await page.get_by_test_id("run-id").inner_text()
    assert replay_id != failed["run_id"]
    run = await dev.get(f"/v1/runs/{replay_id}")
    assert run["output"] == "charged"
    original = await dev.get(f"/v1/runs/{failed['run_id']}")
    # "prepare" was copied from the original, not run again: the same attempt, same times.
    assert run["steps"][0]["id"] == "prepare"
    assert run["steps"][0]["started_at"] == original["steps"][0]["started_at"]
    # And the original links to its replay.
    await page.goto(f"/#/runs/{failed['run_id']}")
    await expect(page.get_by_test_id("replayed-as")).to_have_text(replay_id)


async def test_a_sleeping_run_is_cancelled_with_the_button(page: Any, dev: DevServer) -> None:
    event_id = await dev.send("console.nap")
    run = await dev.wait_run(event_id, "SLEEPING")
    await page.goto(f"/#/runs/{run['run_id']}")
    await expect(page.get_by_test_id("run-status")).to_have_text("SLEEPING")
    await page.locator('[data-step="long-nap"]').click()
    await expect(page.get_by_test_id("wake-at")).not_to_have_text("–")
    await page.get_by_test_id("cancel-run").click()
    await expect(page.get_by_test_id("run-status")).to_have_text("CANCELLED", timeout=LIVE)
    await expect(page.get_by_test_id("cancel-run")).to_have_count(0)
    assert (await dev.runs(event_id))[0]["status"] == "CANCELLED"


async def test_bulk_cancel_of_a_filtered_set_says_how_many_first(
    page: Any, dev: DevServer, shots: Path
) -> None:
    asked = [await dev.send("console.ask", {"ticket": f"b-{i}", "timeout": "1h"}) for i in range(3)]
    for event_id in asked:
        await dev.wait_run(event_id, "WAITING")
    await dev.send("console.timed", {"failures": 0, "seconds": 0})  # another function: untouched
    await page.goto("/#/runs")
    await page.get_by_test_id("filter-function").select_option("console-await-reply")
    await page.get_by_test_id("filter-status").select_option("WAITING")
    await expect(page.get_by_test_id("run-row")).to_have_count(3, timeout=LIVE)
    await page.get_by_test_id("bulk-cancel").click()
    dialog = page.get_by_test_id("confirm-dialog")
    await expect(dialog).to_contain_text("Cancel 3 runs?")
    await page.screenshot(path=str(shots / "bulk-cancel.png"))
    await dialog.get_by_test_id("confirm").click()
    await expect(page.get_by_test_id("toast")).to_contain_text("Cancelled 3 runs")
    # The filtered list empties by itself as the statuses change.
    await expect(page.get_by_test_id("no-runs")).to_be_visible(timeout=LIVE)
    for event_id in asked:
        assert (await dev.runs(event_id))[0]["status"] == "CANCELLED"


async def test_new_runs_appear_in_the_list_without_reloading(
    page: Any, dev: DevServer, shots: Path
) -> None:
    await page.goto("/#/runs?function_id=console-timed")
    loaded = page.get_by_test_id("run-row").or_(page.get_by_test_id("no-runs"))
    await expect(loaded.first).to_be_visible()
    before = await page.get_by_test_id("run-row").count()
    event_id = await dev.send("console.timed", {"failures": 0, "seconds": 0})
    run = await dev.wait_run(event_id, "COMPLETED")
    row = page.locator(f'[data-run="{run["run_id"]}"]')
    await expect(row).to_be_visible(timeout=LIVE)
    await expect(row.get_by_test_id("status")).to_have_text("COMPLETED")
    assert await page.get_by_test_id("run-row").count() == before + 1
    await page.goto("/#/runs")
    await expect(page.get_by_test_id("run-row").first).to_be_visible()
    await page.screenshot(path=str(shots / "runs.png"), full_page=True)


async def test_when_the_api_wants_a_token_the_console_asks_for_one_and_keeps_it(
    browser: Any, dev: DevServer, shots: Path
) -> None:
    context = await browser.new_context(
        base_url=dev.secure_url, viewport={"width": 1280, "height": 860}
    )
    page = await context.new_page()
    await page.goto("/")
    dialog = page.get_by_test_id("token-dialog")
    await expect(dialog).to_be_visible()
    await expect(page.get_by_test_id("function-row")).to_have_count(0)
    await page.screenshot(path=str(shots / "sign-in.png"))
    await page.get_by_test_id("token-input").fill("not-the-token")
    await page.get_by_test_id("token-submit").click()
    await expect(dialog).to_contain_text("refused")
    await page.get_by_test_id("token-input").fill(API_TOKEN)
    await page.get_by_test_id("token-submit").click()
    await expect(page.get_by_test_id("function-row")).to_have_count(FUNCTIONS)
    await expect(dialog).to_have_count(0)
    # Kept for the tab (sessionStorage) and sent as a Bearer header: a reload needs no prompt.
    assert await page.evaluate("sessionStorage.getItem('ferryman.token')") == API_TOKEN
    await page.reload()
    await expect(page.get_by_test_id("function-row")).to_have_count(FUNCTIONS)
    await expect(dialog).to_have_count(0)
    await context.close()


async def test_flow_control_says_why_a_run_waits_and_which_rule_skipped_an_event(
    page: Any, dev: DevServer, shots: Path
) -> None:
    # Two runs of account acme hold both slots; the third waits QUEUED, and says why.
    busy = [await dev.send("console.account", {"account": "acme", "seconds": 45}) for _ in "ab"]
    running = [await dev.wait_run(event_id, "RUNNING") for event_id in busy]
    event_id = await dev.send("console.account", {"account": "acme", "seconds": 0})
    held = await dev.wait_run(event_id, "QUEUED")
    why = "concurrency key acme full (2/2)"
    await page.goto("/#/runs?function_id=console-two-per-account")
    row = page.locator(f'[data-run="{held["run_id"]}"]')
    await expect(row.get_by_test_id("reason")).to_have_text(why, timeout=LIVE)
    await page.screenshot(path=str(shots / "runs-held.png"), full_page=True)
    await row.get_by_role("link", name=held["run_id"]).click()
    await expect(page.get_by_test_id("reason")).to_contain_text(why)
    await expect(page.get_by_test_id("queued-reason")).to_contain_text(why)

    # A slot frees: the run starts and finishes without a reload, its timeline still says
    # why it waited.
    async with httpx.AsyncClient(base_url=dev.url) as client:
        (await client.post(f"/v1/runs/{running[0]['run_id']}/cancel")).raise_for_status()
    await expect(page.get_by_test_id("run-status")).to_have_text("COMPLETED", timeout=LIVE)
    await expect(page.get_by_test_id("queued-reason")).to_contain_text(why)
    await expect(page.get_by_test_id("held-reason")).to_contain_text(why)
    await page.screenshot(path=str(shots / "run-held.png"), full_page=True)
    async with httpx.AsyncClient(base_url=dev.url) as client:
        (await client.post(f"/v1/runs/{running[1]['run_id']}/cancel")).raise_for_status()

    # One event per user an hour: the second is skipped, and the Events page names the rule.
    first = await dev.send("console.rated", {"user": "ann"})
    await dev.wait_run(first, "COMPLETED")
    second = await dev.send("console.rated", {"user": "ann"})
    await page.goto("/#/events")
    row = page.get_by_test_id("event-row").filter(has_text=second)
    await expect(row.get_by_test_id("skipped-chip")).to_have_text(
        "console-rate-limited: skipped by rate_limit", timeout=LIVE
    )
    await row.get_by_role("link", name=second).click()
    skipped = page.get_by_test_id("open-event").get_by_test_id("skipped")
    await expect(skipped).to_contain_text("console-rate-limited")
    await expect(skipped).to_contain_text("skipped by rate_limit")
    await page.screenshot(path=str(shots / "events-skipped.png"))
    assert (await dev.runs(second)) == []


def parcel_headers(body: bytes, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Parcel-Signature": f"sha256={digest}"}


async def test_the_webhooks_page_lists_deliveries_verified_refused_and_failed_and_reruns_one(
    page: Any, dev: DevServer, shots: Path
) -> None:
    signed = json.dumps({"parcel": "p-1", "state": "delivered"}).encode()
    shapeless = json.dumps({"state": "lost"}).encode()  # no "parcel": the transform fails
    async with httpx.AsyncClient(base_url=dev.url) as sender:
        url = "/webhooks/parcels"
        good = await sender.post(url, content=signed, headers=parcel_headers(signed))
        bad = await sender.post(url, content=signed, headers=parcel_headers(signed, "wrong"))
        broken = await sender.post(url, content=shapeless, headers=parcel_headers(shapeless))
    assert good.status_code == 200, good.text
    assert good.json()["ids"] == ["parcel-p-1"]
    assert bad.status_code == 401
    assert broken.status_code == 400

    await page.goto("/")
    await expect(page.get_by_test_id("function-row").first).to_be_visible()
    await page.keyboard.press("w")  # the Webhooks page's key
    hook = page.locator('[data-webhook="parcels"]')
    await expect(hook).to_contain_text("POST /webhooks/parcels")
    await expect(hook).to_contain_text("hmac")
    await expect(hook.get_by_test_id("last-error")).to_contain_text("no such key 'parcel'")
    await expect(hook.get_by_test_id("refused")).to_have_text("1 refused recently")
    await page.screenshot(path=str(shots / "webhooks.png"), full_page=True)
    await hook.get_by_role("link", name="parcels").click()

    rows = page.get_by_test_id("delivery-row")
    await expect(rows).to_have_count(3)
    accepted = page.locator(f'[data-delivery="{good.json()["delivery_id"]}"]')
    await expect(accepted.get_by_test_id("delivery-status")).to_have_text("verified")
    await expect(accepted.get_by_test_id("delivery-event")).to_have_text("parcel-p-1")
    refused = page.locator('[data-status="REJECTED"]')
    await expect(refused.get_by_test_id("delivery-status")).to_have_text("rejected")
    await expect(refused.get_by_test_id("delivery-reason")).to_have_text("bad_signature")
    failed = page.locator(f'[data-delivery="{broken.json()["delivery_id"]}"]')
    await expect(failed.get_by_test_id("delivery-status")).to_have_text("transform error")
    await expect(failed.get_by_test_id("delivery-error")).to_contain_text("parcel")
    await page.screenshot(path=str(shots / "webhook.png"), full_page=True)

    # Rerun the verified one: the same event (its id is the parcel's), counted as a re-run.
    await accepted.get_by_test_id("rerun").click()
    await expect(page.get_by_test_id("toast")).to_contain_text("1 event")
    await expect(accepted).to_contain_text("re-run 1×", timeout=LIVE)
    # And the event it made opens on the Events page.
    await accepted.get_by_test_id("delivery-event").click()
    await expect(page.get_by_test_id("open-event")).to_contain_text("console.parcel")
