"""How many workers a pool needs for its backlog (pure functions).

Scale up at once; scale down only after the backlog has wanted fewer workers for
``scaleDownDelay``, and never below the jobs in flight: each held job may be running on a
different worker, and a scale-down must not take away a worker that is running a step.
(Workers also finish their steps on SIGTERM within terminationGracePeriodSeconds.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ferryman_operator.spec import parse_duration

DEFAULT_TARGET = 10
DEFAULT_SCALE_DOWN_DELAY = 60.0


@dataclass(frozen=True)
class ScalePolicy:
    min: int
    max: int
    target: int = DEFAULT_TARGET
    scale_down_delay: float = DEFAULT_SCALE_DOWN_DELAY

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> ScalePolicy | None:
        """None for a fixed-size pool (spec.replicas, or neither field set)."""
        auto = spec.get("autoscaling")
        if not auto:
            return None
        return cls(
            min=int(auto.get("min", 0)),
            max=int(auto["max"]),
            target=int(auto.get("targetBacklogPerReplica", DEFAULT_TARGET)),
            scale_down_delay=parse_duration(auto["scaleDownDelay"])
            if "scaleDownDelay" in auto
            else DEFAULT_SCALE_DOWN_DELAY,
        )


@dataclass(frozen=True)
class Decision:
    replicas: int
    low_since: float | None  # when the backlog started wanting fewer replicas
    reason: str


def fixed_replicas(spec: Mapping[str, Any]) -> int:
    return int(spec.get("replicas", 1))


def decide(
    policy: ScalePolicy,
    *,
    pending: int,
    in_flight: int,
    current: int,
    low_since: float | None,
    now: float,
) -> Decision:
    backlog = pending + in_flight
    wanted = min(policy.max, max(policy.min, math.ceil(backlog / policy.target)))
    floor = min(current, in_flight, policy.max)
    if wanted >= current:
        reason = "ScaledUp" if wanted > current else "Steady"
        return Decision(wanted, None, reason)
    if low_since is None:
        return Decision(current, now, "ScaleDownPending")
    if now - low_since < policy.scale_down_delay:
        return Decision(current, low_since, "ScaleDownPending")
    target = max(wanted, floor)
    if target >= current:
        return Decision(current, low_since, "WorkInFlight")
    return Decision(target, None, "ScaledDown")
