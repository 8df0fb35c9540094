"""Timeouts: ``start`` cancels a run still not started that long after its event;
``finish`` cancels a run still going that long after it started. Both are timers; the
cancellation emits ``ferryman/function.cancelled`` like any other."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ferryman_worker.admission import store
from ferryman_worker.admission.policy import FlowPolicy
from ferryman_worker.storage.checkpoints import PendingTimer


async def start_deadline(
    conn: Any, policy: FlowPolicy, run_id: str, now: datetime
) -> PendingTimer | None:
    t = policy.fn.config.timeouts
    if t is None or t.start is None:
        return None
    return await store.timer(conn, run_id, store.START_DEADLINE, policy.id, now + t.start)


async def finish_deadline(
    conn: Any, policy: FlowPolicy, run_id: str, now: datetime
) -> PendingTimer | None:
    t = policy.fn.config.timeouts
    if t is None or t.finish is None:
        return None
    return await store.timer(conn, run_id, store.FINISH_DEADLINE, policy.id, now + t.finish)


def reason(policy: FlowPolicy, timer_id: str) -> str:
    t = policy.fn.config.timeouts
    assert t is not None
    if timer_id == store.START_DEADLINE:
        return f"timeouts.start: not started within {t.start}"
    return f"timeouts.finish: still running after {t.finish}"
