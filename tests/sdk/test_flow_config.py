"""Flow-control options that cannot work together are refused where they are declared."""

from __future__ import annotations

import pytest

import ferryman
from ferryman.errors import InvalidFunctionError


async def _noop(ctx: ferryman.Context) -> None:
    return None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"batch_events": ferryman.BatchEvents(max_size=2, timeout="1s"),
             "debounce": ferryman.Debounce(period="1s")},
            "batch_events cannot be combined with debounce",
        ),
        (
            {"batch_events": ferryman.BatchEvents(max_size=2, timeout="1s"),
             "rate_limit": ferryman.RateLimit(limit=1, period="1m")},
            "batch_events cannot be combined with rate_limit",
        ),
        (
            {"debounce": ferryman.Debounce(period="1s"),
             "throttle": ferryman.Throttle(limit=1, period="1s")},
            "debounce cannot be combined with throttle",
        ),
    ],
)  # fmt: skip
def test_incompatible_options_are_refused(options: dict[str, object], message: str) -> None:
    fm = ferryman.Ferryman(app_id="t")
    with pytest.raises(InvalidFunctionError, match=message):
        fm.function(id="f", trigger=ferryman.on_event("e"), **options)(_noop)  # type: ignore[arg-type]


def test_a_bad_key_expression_fails_where_the_function_is_declared() -> None:
    fm = ferryman.Ferryman(app_id="t")
    with pytest.raises(InvalidFunctionError, match=r"concurrency\[0\] key"):
        fm.function(
            id="f",
            trigger=ferryman.on_event("e"),
            concurrency=[ferryman.Concurrency(limit=1, key="event.data.(")],
        )(_noop)
