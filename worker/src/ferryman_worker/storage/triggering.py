"""From an event to a run: its idempotency key and the cancel_on waits it starts with."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ferryman import Event, Function
from ferryman._config import Cancel
from ferryman._events import value_at
from ferryman._expressions import Expression

IDEMPOTENCY_SECONDS = 24 * 3600
_compiled: dict[str, Expression] = {}


def _expression(source: str, where: str) -> Expression:
    if source not in _compiled:
        _compiled[source] = Expression(source, where=where)
    return _compiled[source]


def run_key(fn: Function, event: Event) -> str:
    """One run per function and key for 24 h: the event id, or the idempotency key."""
    return key_of(fn.id, fn.config.idempotency, event)


def key_of(function_id: str, idempotency: str | None, event: Event) -> str:
    """``run_key`` from a function's declared idempotency expression (an invoked function
    may be hosted by another worker: its config comes from the functions table)."""
    source = idempotency
    if not source:
        return event.id or ""
    try:
        value = _expression(source, f"function {function_id} idempotency").evaluate(
            {"event": event.to_wire()}
        )
    except (ValueError, TypeError, RuntimeError):
        return event.id or ""  # the key cannot be computed: the event id still dedupes
    return f"idem:{value}"


def cancel_waits(fn: Function, event: Event) -> list[dict[str, Any]]:
    """The cancel_on entries of ``fn``, bound to this trigger event."""
    return cancel_waits_of(fn.config.cancel_on, event)


def cancel_waits_of(cancels: Sequence[Cancel], event: Event) -> list[dict[str, Any]]:
    waits = []
    trigger = event.to_wire()
    for cancel in cancels:
        path = cancel.match.split(".")[1:] if cancel.match else None
        value = value_at(trigger.get("data", {}), path) if path else None
        waits.append({
            "event": cancel.event, "path": path, "value": value, "if": cancel.if_,
            "trigger": trigger,
            "timeout": cancel.timeout.total_seconds() if cancel.timeout else 366 * 86400,
        })  # fmt: skip
    return waits
