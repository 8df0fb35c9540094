"""The welcome series: a welcome email now, onboarding tips three days later."""

from __future__ import annotations

from datetime import timedelta

import pytest

import ferryman
from examples import services, welcome_series
from ferryman.testing import run_function

EVENT = {"name": "user/signup", "data": {"userId": "u-1"}}


async def test_a_new_user_is_welcomed_then_sent_tips_three_days_later() -> None:
    result = await run_function(welcome_series.welcome_series, EVENT)

    assert result.status == "COMPLETED"
    assert result.elapsed == timedelta(days=3)
    assert services.count("users.get", user_id="u-1") == 1
    emails = [(c["to"], c["template"]) for c in services.calls("email.send")]
    assert emails == [("u-1@example.com", "welcome"), ("u-1@example.com", "onboarding-tips")]


async def test_a_seeded_user_gets_mail_at_their_own_address() -> None:
    services.seed("users", "u-1", {"id": "u-1", "email": "ada@example.com", "name": "Ada"})

    await run_function(welcome_series.welcome_series, EVENT)

    assert {c["to"] for c in services.calls("email.send")} == {"ada@example.com"}


async def test_a_signup_without_a_user_id_is_refused_before_the_run_starts() -> None:
    with pytest.raises(ferryman.EventValidationError, match="userId"):
        await run_function(welcome_series.welcome_series, {"name": "user/signup", "data": {}})
    assert services.records() == []
