"""From a DurableFunction's spec to the JetStream topology it needs (pure functions)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ferryman_jetstream import CronSchedule, FunctionTopology
from ferryman_jetstream.consumers import DEFAULT_MAX_ACK_PENDING

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
DEFAULT_ACK_WAIT = 30.0


class SpecError(ValueError):
    """A spec the API server accepted but the operator cannot act on (the message says why)."""


def parse_duration(text: str) -> float:
    """'1h30m' -> 5400.0 seconds (the CRD's duration syntax, a subset of Go's)."""
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise SpecError(f"{text!r} is not a duration like '30s', '5m' or '1h30m'")
    return total


def function_id(name: str, spec: Mapping[str, Any]) -> str:
    return str(spec.get("functionId") or name)


def max_ack_pending(spec: Mapping[str, Any]) -> int:
    """Explicit delivery.maxAckPending, else the default. Concurrency limits are enforced
    by the workers' admission stage (PostgreSQL), not here: max_ack_pending applies to each
    of the three consumers, so it used to allow three times the limit."""
    delivery = spec.get("delivery") or {}
    if "maxAckPending" in delivery:
        return int(delivery["maxAckPending"])
    return DEFAULT_MAX_ACK_PENDING


def topology(name: str, spec: Mapping[str, Any], created: str | None = None) -> FunctionTopology:
    """What JetStream must hold; ``created`` (the CR's creationTimestamp) is when the
    function was declared: its trigger consumer delivers every event since then."""
    triggers = spec.get("triggers") or []
    if not triggers:
        raise SpecError("the function has no triggers")
    events = tuple(sorted({str(t["event"]) for t in triggers if t.get("event")}))
    crons = tuple(
        CronSchedule(expression=str(t["cron"]), timezone=str(t.get("timezone") or "UTC"))
        for t in triggers
        if t.get("cron")
    )
    delivery = spec.get("delivery") or {}
    ack_wait = parse_duration(delivery["ackWait"]) if "ackWait" in delivery else DEFAULT_ACK_WAIT
    return FunctionTopology(
        function_id=function_id(name, spec),
        events=events,
        crons=crons,
        max_ack_pending=max_ack_pending(spec),
        ack_wait_seconds=ack_wait,
        max_deliver=int(delivery.get("maxDeliver", -1)),
        declared_at=datetime.fromisoformat(created) if created else None,
    )


def triggers_summary(spec: Mapping[str, Any], limit: int = 60) -> str:
    """'video.uploaded, cron(0 3 * * *)' for the Triggers printer column."""
    parts = []
    for t in spec.get("triggers") or []:
        if t.get("event"):
            parts.append(str(t["event"]))
        elif t.get("cron"):
            tz = f" {t['timezone']}" if t.get("timezone") else ""
            parts.append(f"cron({t['cron']}{tz})")
    text = ", ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def consumer_names(topo: FunctionTopology) -> list[str]:
    return [config.durable_name or "" for _, config in topo.consumer_configs()]
