"""A function's flow control, compiled once: which rules apply and their CEL keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ferryman import Event, Function
from ferryman._expressions import Expression


@dataclass(frozen=True)
class FlowPolicy:
    fn: Function
    keys: dict[str, Expression]  # "concurrency.0", "throttle", ... → compiled key

    @property
    def id(self) -> str:
        return self.fn.id

    @property
    def gated(self) -> bool:
        """Whether runs of this function go through the admission stage."""
        c = self.fn.config
        return bool(
            c.concurrency
            or c.throttle
            or c.rate_limit
            or c.debounce
            or c.batch_events
            or c.priority
            or c.singleton
            or c.timeouts
        )

    def key(self, rule: str, event: Event) -> str:
        """The key value ``rule`` gives ``event``: '' without a key expression, or when the
        expression cannot be evaluated for this event (those events then share one key)."""
        expr = self.keys.get(rule)
        if expr is None:
            return ""
        try:
            value: Any = expr.evaluate({"event": event.to_wire()})
        except (ValueError, TypeError, RuntimeError, KeyError):
            return ""
        return value if isinstance(value, str) else str(value)

    def concurrency_keys(self, event: Event) -> list[str] | None:
        """One slot key per concurrency limit, qualified by its scope so that runs share a
        limit exactly when the scope and the key value agree."""
        limits = self.fn.config.concurrency
        if not limits:
            return None
        keys = []
        for n, limit in enumerate(limits):
            value = self.key(f"concurrency.{n}", event)
            if limit.scope == "fn":
                prefix = f"fn:{self.fn.id}:{n}"
            elif limit.scope == "app":
                prefix = f"app:{self.fn.app_id}"
            else:
                prefix = "account"
            keys.append(f"{prefix}|{value}")
        return keys

    @property
    def limits(self) -> list[int]:
        return [c.limit for c in self.fn.config.concurrency]


def label(slot_key: str) -> str:
    """The part of a slot key a person wrote: the key value, or 'the function'."""
    value = slot_key.split("|", 1)[1] if "|" in slot_key else slot_key
    return value or "(none)"


def policy_of(fn: Function) -> FlowPolicy:
    c = fn.config
    where = f"function {fn.id!r}"
    keys: dict[str, Expression] = {}
    for n, limit in enumerate(c.concurrency):
        if limit.key:
            keys[f"concurrency.{n}"] = Expression(limit.key, where=f"{where}, concurrency key")
    for rule, option in (
        ("throttle", c.throttle),
        ("rate_limit", c.rate_limit),
        ("debounce", c.debounce),
        ("batch", c.batch_events),
        ("singleton", c.singleton),
    ):
        source = getattr(option, "key", None)
        if source:
            keys[rule] = Expression(source, where=f"{where}, {rule} key")
    if c.priority:
        keys["priority"] = Expression(c.priority.run, where=f"{where}, priority")
    return FlowPolicy(fn, keys)
