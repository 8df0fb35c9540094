"""Durations as people write them: ``"3 days"``, ``"1h30m"``, seconds or a ``timedelta``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ferryman._durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("3 days", timedelta(days=3)),
        ("1 day 2 hours", timedelta(days=1, hours=2)),
        ("2w", timedelta(weeks=2)),
        ("250ms", timedelta(milliseconds=250)),
        ("1.5h", timedelta(minutes=90)),
        ("10 Minutes", timedelta(minutes=10)),
        (90, timedelta(seconds=90)),
        (0.5, timedelta(milliseconds=500)),
        (timedelta(hours=2), timedelta(hours=2)),
    ],
)
def test_durations_parse(text: Any, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["soon", "3 fortnights", "h", "1h 30", "-5s"])
def test_a_bad_duration_says_how_to_write_one(bad: str) -> None:
    with pytest.raises(ValueError, match="is not a duration; write it like '30s', '1h30m'"):
        parse_duration(bad, what="sleep")


@pytest.mark.parametrize(
    ("bad", "message"),
    [("", "is empty"), (True, "not a boolean"), (-1, "is negative"), ([1], "must be a timedelta")],
)
def test_other_bad_durations(bad: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("value", "text"),
    [(timedelta(seconds=90), "1m30s"), (timedelta(hours=26), "26h"), (timedelta(0), "0s"),
     (timedelta(milliseconds=1500), "1500ms")],
)  # fmt: skip
def test_durations_format_go_style(value: timedelta, text: str) -> None:
    assert format_duration(value) == text
    assert parse_duration(text) == value
