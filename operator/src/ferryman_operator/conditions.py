"""Kubernetes-style status conditions (pure functions)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Condition:
    type: str
    ok: bool | None  # None = Unknown
    reason: str
    message: str = ""

    @property
    def status(self) -> str:
        return "Unknown" if self.ok is None else ("True" if self.ok else "False")


def merge(
    existing: Iterable[Mapping[str, Any]] | None,
    updates: Iterable[Condition],
    generation: int | None,
    at: str | None = None,
) -> list[dict[str, Any]]:
    """The new conditions list: lastTransitionTime moves only when a status changes."""
    at = at or now()
    result = {str(c["type"]): dict(c) for c in existing or [] if "type" in c}
    for cond in updates:
        old = result.get(cond.type)
        changed = old is None or old.get("status") != cond.status
        result[cond.type] = {
            "type": cond.type,
            "status": cond.status,
            "reason": cond.reason,
            "message": cond.message,
            "observedGeneration": generation,
            "lastTransitionTime": at if changed else old.get("lastTransitionTime", at),  # type: ignore[union-attr]
        }
    return sorted(result.values(), key=lambda c: str(c["type"]))


def is_true(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> bool:
    return any(c.get("type") == type_ and c.get("status") == "True" for c in conditions or [])
