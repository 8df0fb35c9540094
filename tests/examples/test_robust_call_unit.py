"""The robust external call: backoff, rate limits, bad requests and per-step retries."""

from __future__ import annotations

from datetime import timedelta

import pytest

from examples import robust_call, services
from ferryman.testing import run_function

EVENT = {"name": "listing.sync.requested", "data": {"listingId": "l-1", "price": 120}}
PATH = "/listings/l-1"


async def test_a_healthy_partner_is_called_once_per_step() -> None:
    result = await run_function(robust_call.sync_listing, EVENT)

    assert result.status == "COMPLETED"
    assert result.output["notified"] is True
    assert services.count("partner.get", path=PATH) == 1
    assert services.count("partner.put", path=PATH) == 1
    assert services.count("partner.post") == 1


async def test_rate_limited_answers_wait_what_the_partner_asked() -> None:
    services.script("partner.get", fail=2, error="rate_limited", retry_after=90)

    result = await run_function(robust_call.sync_listing, EVENT)

    assert result.status == "COMPLETED"
    assert result.steps["fetch-listing"].attempts == 3
    assert result.elapsed == timedelta(seconds=180)


async def test_a_bad_request_fails_the_run_at_once() -> None:
    services.script("partner.get", fail=1, error="bad_request")

    result = await run_function(robust_call.sync_listing, EVENT)

    assert result.status == "FAILED"
    assert result.steps["fetch-listing"].attempts == 1
    assert result.error["name"] == "StepError"
    assert services.count("partner.put") == 0


async def test_transient_failures_back_off_exponentially_up_to_five_retries() -> None:
    services.script("partner.get", fail=6)

    result = await run_function(robust_call.sync_listing, EVENT)

    assert result.status == "FAILED"
    assert result.steps["fetch-listing"].attempts == 6  # 1 + 5 retries
    # 1 + 2 + 4 + 8 + 16 s, each shortened by at most 20 % jitter.
    assert timedelta(seconds=31 * 0.8) <= result.elapsed <= timedelta(seconds=31)


@pytest.mark.parametrize(("failures", "status"), [(3, "COMPLETED"), (4, "FAILED")])
async def test_the_update_step_has_three_retries(failures: int, status: str) -> None:
    services.script("partner.put", fail=failures)

    result = await run_function(robust_call.sync_listing, EVENT)

    assert result.status == status
    assert len(services.attempts("partner.put")) == min(failures + 1, 4)
    assert services.count("partner.get") == 1


async def test_the_best_effort_webhook_is_tried_once_and_its_failure_is_tolerated() -> None:
    services.script("partner.post", fail=1)

    result = await run_function(robust_call.sync_listing, EVENT)

    assert result.status == "COMPLETED"
    assert result.output["notified"] is False
    assert result.steps["notify-webhook"].status == "FAILED"
    assert len(services.attempts("partner.post")) == 1
