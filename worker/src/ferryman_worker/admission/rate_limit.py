"""Rate limit: GCRA on events; an event over the limit starts no run and is recorded as
skipped (``skipped_events``, rule ``rate_limit``). Up to ``limit`` events per ``period``
are let through, back to back if they come at once."""

from __future__ import annotations

from typing import Any

from ferryman import Event
from ferryman_worker.admission import gcra
from ferryman_worker.admission.policy import FlowPolicy

RULE = "rate_limit"


async def allows(conn: Any, policy: FlowPolicy, event: Event) -> bool:
    rate = policy.fn.config.rate_limit
    if rate is None:
        return True
    key = policy.key(RULE, event)
    slot = await gcra.reserve(
        conn, policy.id, RULE, key, rate.period, rate.limit, rate.limit, delay=False
    )
    return slot is not None
