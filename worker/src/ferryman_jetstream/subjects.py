"""Names of streams, subjects and consumers.

Event names become subject tokens (``booking.created`` -> ``ferryman.events.booking.created``),
so a trigger consumer filters on exactly the events it needs and the server does the
routing. Function ids are DNS-label-like, so they are used verbatim in subjects and
consumer names.
"""

from __future__ import annotations

from ferryman._config import check_event_name

EVENTS_STREAM = "FERRYMAN_EVENTS"
WORK_STREAM = "FERRYMAN_WORK"
TIMERS_STREAM = "FERRYMAN_TIMERS"

EVENTS_PREFIX = "ferryman.events"
WORK_PREFIX = "ferryman.work"
TIMERS_PREFIX = "ferryman.timers"


class InvalidEventName(ValueError):
    """An event name that cannot be routed; the message says why and what to use."""


def validate_event_name(name: object) -> str:
    """Return ``name`` if it is a routable event name, else raise InvalidEventName. One
    rule for the SDK (checked where a function is declared) and the gateway: the SDK's."""
    if not isinstance(name, str) or not name:
        raise InvalidEventName("event 'name' is required and must be a non-empty string")
    try:
        return check_event_name(name)
    except ValueError as exc:
        raise InvalidEventName(str(exc)) from None


def event_subject(name: str) -> str:
    return f"{EVENTS_PREFIX}.{name}"


def work_subject(function_id: str) -> str:
    """Jobs that advance runs of one function."""
    return f"{WORK_PREFIX}.{function_id}"


def timer_definition_subject(function_id: str, run_id: str, timer_id: str) -> str:
    """A one-shot schedule definition; re-publishing the same subject replaces it."""
    return f"{TIMERS_PREFIX}.at.{function_id}.{run_id}.{timer_id}"


def timer_fired_subject(function_id: str) -> str:
    return f"{TIMERS_PREFIX}.fired.{function_id}"


def cron_definition_subject(function_id: str, index: int) -> str:
    return f"{TIMERS_PREFIX}.cron.{function_id}.{index}"


def cron_tick_subject(function_id: str) -> str:
    return f"{TIMERS_PREFIX}.tick.{function_id}"


# One consumer shared by every worker: each event is matched against pending waits once.
MATCHER_CONSUMER = "matcher"


def trigger_consumer(function_id: str) -> str:
    return f"trigger-{function_id}"


def work_consumer(function_id: str) -> str:
    return f"work-{function_id}"


def timers_consumer(function_id: str) -> str:
    return f"timers-{function_id}"
