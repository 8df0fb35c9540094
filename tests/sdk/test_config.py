"""A wrong function definition fails where it is declared, with a message saying what to do."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

import ferryman

fm = ferryman.Ferryman(app_id="config")
ON_X = ferryman.on_event("x")


async def handler(ctx: ferryman.Context) -> None: ...


def declare(**options: Any) -> ferryman.Function:
    options.setdefault("id", "fn")
    if "triggers" not in options:
        options.setdefault("trigger", ON_X)
    return fm.function(**options)(handler)


@pytest.mark.parametrize("app_id", ["Bookings", "my_app", "-x", "", "a b"])
def test_an_app_id_is_lowercase_letters_digits_and_dashes(app_id: str) -> None:
    with pytest.raises(ferryman.InvalidFunctionError, match="lowercase letters, digits and dashes"):
        ferryman.Ferryman(app_id=app_id)


@pytest.mark.parametrize("fn_id", ["Process", "process_booking", "ends-", "x" * 64])
def test_a_function_id_is_a_dns_label(fn_id: str) -> None:
    with pytest.raises(ferryman.InvalidFunctionError, match=f"function {fn_id!r}: id:"):
        declare(id=fn_id)


def test_a_function_id_is_unique_in_its_app() -> None:
    app = ferryman.Ferryman(app_id="dupes")
    app.function(id="same", trigger=ON_X)(handler)

    with pytest.raises(ferryman.InvalidFunctionError, match="'same' is declared twice"):
        app.function(id="same", trigger=ON_X)(handler)


def test_functions_are_registered_under_app_and_function_id() -> None:
    app = ferryman.Ferryman(app_id="shop")
    fn = app.function(id="charge", trigger=ON_X)(handler)

    assert fn.id == "shop-charge"
    assert app.functions == {"shop-charge": fn}


def test_retries_are_at_most_20() -> None:
    assert declare(id="twenty", retries=20).config.retries == 20
    with pytest.raises(ferryman.InvalidFunctionError, match=r"retries: .*less than or equal to 20"):
        declare(retries=21)
    with pytest.raises(ferryman.InvalidFunctionError, match="retries"):
        declare(retries=-1)


def test_a_function_needs_exactly_one_of_trigger_and_triggers() -> None:
    with pytest.raises(ferryman.InvalidFunctionError, match="exactly one of trigger"):
        fm.function(id="both", trigger=ON_X, triggers=[ON_X])(handler)
    with pytest.raises(ferryman.InvalidFunctionError, match="exactly one of trigger"):
        fm.function(id="neither")(handler)
    with pytest.raises(ferryman.InvalidFunctionError, match="at least one trigger"):
        declare(triggers=[])


def test_a_function_has_at_most_10_triggers() -> None:
    ten = [ferryman.on_event(f"e{i}") for i in range(10)]
    assert len(declare(id="ten", triggers=ten).config.triggers) == 10

    with pytest.raises(ferryman.InvalidFunctionError, match="at most 10 triggers, got 11"):
        declare(triggers=[*ten, ferryman.on_event("e10")])


def test_a_handler_must_be_async() -> None:
    def sync(ctx: ferryman.Context) -> None: ...

    with pytest.raises(ferryman.InvalidFunctionError, match="must be an 'async def' function"):
        fm.function(id="sync", trigger=ON_X)(sync)


def test_a_bad_if_expression_is_reported_at_declaration() -> None:
    with pytest.raises(ferryman.InvalidFunctionError, match="is not a valid CEL expression"):
        declare(trigger=ferryman.on_event("x", if_="event.data.total >"))


@pytest.mark.parametrize(
    ("cron", "says"),
    [
        ("0 9 * *", "has 4 fields, not 5"),
        ("0 9 * * * *", "has 6 fields, not 5"),
        ("every day", "has 2 fields, not 5"),
        ("61 9 * * *", "the minute field '61' is not valid (minute runs from 0 to 59)"),
        ("0 25 * * *", "the hour field '25' is not valid (hour runs from 0 to 23)"),
        ("0 9 32 * *", "the day-of-month field '32' is not valid"),
        ("0 9 * 13 *", "the month field '13' is not valid"),
    ],
)
def test_a_cron_has_five_valid_fields_and_the_error_names_the_bad_one(cron: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        ferryman.on_cron(cron)


def test_a_cron_time_zone_is_an_iana_name() -> None:
    assert ferryman.on_cron("0 9 * * *", timezone="Europe/Paris").timezone == "Europe/Paris"
    assert ferryman.on_cron("0 9 * * *").timezone == "UTC"
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'; use an IANA name"):
        ferryman.on_cron("0 9 * * *", timezone="Mars/Olympus")


def test_a_cron_may_carry_its_time_zone_inngest_style() -> None:
    trigger = ferryman.on_cron("TZ=Europe/Paris 0 9 * * *")

    assert (trigger.cron, trigger.timezone) == ("0 9 * * *", "Europe/Paris")


def test_backoff_durations_are_parsed_and_checked() -> None:
    backoff = ferryman.Backoff(initial="500ms", factor=3, max="1h30m")

    assert (backoff.initial, backoff.max) == (timedelta(milliseconds=500), timedelta(minutes=90))
    with pytest.raises(ValueError, match="backoff delay 'soon' is not a duration"):
        ferryman.Backoff(initial="soon")
    with pytest.raises(ferryman.InvalidFunctionError, match=r"backoff\.factor"):
        declare(backoff={"factor": 0.5})


def test_flow_control_limits_are_checked() -> None:
    c = ferryman.Concurrency(limit=1)
    with pytest.raises(ferryman.InvalidFunctionError, match="at most 2 concurrency limits"):
        declare(concurrency=[c, c, c])
    with pytest.raises(ValueError, match="rate_limit period must be at most 24h"):
        ferryman.RateLimit(limit=1, period="25h")
    with pytest.raises(ferryman.InvalidFunctionError, match="at most 5 cancel_on"):
        declare(cancel_on=[ferryman.Cancel(event="x")] * 6)
    with pytest.raises(ValueError, match="throttle period 'often' is not a duration"):
        ferryman.Throttle(limit=1, period="often")


def test_an_integer_concurrency_is_a_single_limit() -> None:
    assert declare(id="conc", concurrency=5).config.concurrency == (ferryman.Concurrency(limit=5),)


def test_unknown_options_are_refused() -> None:
    with pytest.raises(TypeError):
        fm.function(id="typo", trigger=ON_X, retry=3)(handler)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        ferryman.Concurrency(limit=1, keys="x")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"cancel_on": [ferryman.Cancel(event="x.stop", if_="event.data.id ==")]},
            "cancel_on 'x.stop': 'event.data.id ==' is not a valid CEL expression",
        ),
        (
            {"cancel_on": [ferryman.Cancel(event="x.stop", match="id")]},
            "match='id' must name a field of the event data",
        ),
        ({"idempotency": "event.data.(("}, "idempotency: 'event.data.((' is not a valid CEL"),
    ],
)
def test_bad_expressions_fail_when_the_function_is_declared(
    options: dict[str, object], message: str
) -> None:
    fm = ferryman.Ferryman(app_id="exprs")
    with pytest.raises(ferryman.InvalidFunctionError, match=re.escape(message)):

        @fm.function(id="f", trigger=ferryman.on_event("x.start"), **options)  # type: ignore[arg-type]
        async def f(ctx: ferryman.Context) -> None:
            return None
