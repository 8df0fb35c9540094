"""Throttle: GCRA on run starts. Excess runs are delayed, never dropped: each new run
reserves the next start slot at arrival, so it starts at that time whatever comes later.
Starts are spaced ``period / limit`` apart; ``burst`` of them may start back to back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ferryman import Event
from ferryman_worker.admission import gcra
from ferryman_worker.admission.policy import FlowPolicy

RULE = "throttle"


async def start_time(conn: Any, policy: FlowPolicy, event: Event) -> datetime | None:
    """When the new run may start (None: the function is not throttled)."""
    throttle = policy.fn.config.throttle
    if throttle is None:
        return None
    return await gcra.reserve(
        conn,
        policy.id,
        RULE,
        policy.key(RULE, event),
        throttle.period,
        throttle.limit,
        throttle.burst,
        delay=True,
    )
