"""From an event to a run: its idempotency key and the cancel_on waits it starts with."""

from __future__ import annotations

from typing import Any

from ferryman import Event, Function
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
    source = fn.config.idempotency
    if not source:
        return event.id or ""
    try:
        value = _expression(source, f"function {fn.id} idempotency").evaluate(
            {"event": event.to_wire()}
        )
    except (ValueError, TypeError, RuntimeError):
        return event.id or ""  # the key cannot be computed: the event id still dedupes
    return f"idem:{value}"


def cancel_waits(fn: Function, event: Event) -> list[dict[str, Any]]:
    """The cancel_on entries of ``fn``, bound to this trigger event."""
    waits = []
    trigger = event.to_wire()
    for cancel in fn.config.cancel_on:
        path = cancel.match.split(".")[1:] if cancel.match else None
        value = value_at(trigger.get("data", {}), path) if path else None
        waits.append({
            "event": cancel.event, "path": path, "value": value, "if": cancel.if_,
            "trigger": trigger,
            "timeout": cancel.timeout.total_seconds() if cancel.timeout else 366 * 86400,
        })  # fmt: skip
    return waits
