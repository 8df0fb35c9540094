"""Arrival: an event for a function with flow control becomes a skip, joins a pending
run, or becomes a new QUEUED run (which the caller then tries to admit at once).

One transaction per event. The run key (event id or idempotency key) is claimed first,
so a redelivered event finds its earlier decision and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ferryman import Event
from ferryman_worker.admission import gathering, priority, rate_limit, singleton, store, timeouts
from ferryman_worker.admission import throttle as throttling
from ferryman_worker.admission.policy import FlowPolicy
from ferryman_worker.common.ids import new_id
from ferryman_worker.storage.checkpoints import PendingTimer
from ferryman_worker.storage.runs import NewRun, RunStore
from ferryman_worker.storage.triggering import cancel_waits, run_key


@dataclass
class Arrival:
    run_id: str | None = None
    created: bool = False
    start_now: bool = False  # try to admit the run at once
    skipped: str | None = None  # the rule that skipped the event
    timers: list[PendingTimer] = field(default_factory=list)
    cancel: list[str] = field(default_factory=list)  # runs to cancel (singleton cancel)
    delayed: str | None = None  # the rule that made the run wait (throttle, debounce, batch)


async def arrive(
    conn: Any, runs: RunStore, policy: FlowPolicy, event: Event, traceparent: str | None = None
) -> Arrival:
    fn = policy.fn
    c = fn.config
    event_id = event.id or ""
    run_id = new_id()
    existing = await store.claim_key(conn, fn.id, run_key(fn, event), run_id)
    if existing is not None:
        # A redelivery (or a duplicate idempotency key): nothing new is decided, but the
        # run may never have been advanced (its worker died), so it is offered to admission.
        return Arrival(run_id=existing, start_now=True)
    if not await rate_limit.allows(conn, policy, event):
        await store.skip(conn, event_id, fn.id, rate_limit.RULE, None)
        return Arrival(skipped=rate_limit.RULE)
    single_key, active = await singleton.active(conn, policy, event)
    out = Arrival()
    if active:
        assert c.singleton is not None
        if c.singleton.mode == "skip":
            await store.skip(conn, event_id, fn.id, singleton.RULE, active[0])
            return Arrival(skipped=singleton.RULE)
        out.cancel = active
    gather_key = None
    if gathering.rule_of(policy):
        gather_key, folded = await gathering.fold(conn, policy, event)
        if folded is not None:
            await conn.execute(
                "UPDATE run_keys SET run_id = %s WHERE function_id = %s AND run_id = %s",
                (folded.run_id, fn.id, run_id),
            )
            out.run_id, out.start_now = folded.run_id, folded.start_now
            out.timers = [folded.timer] if folded.timer else []
            out.delayed = gathering.rule_of(policy)
            return out
    now: datetime = (await (await conn.execute("SELECT now()")).fetchone())[0]
    not_before, reason = None, store.ARRIVED
    if c.debounce is not None:
        wait = min(c.debounce.period, c.debounce.timeout or c.debounce.period)
        not_before, reason = now + wait, gathering.debouncing(now + wait)
        out.delayed = "debounce"
    elif c.batch_events is not None and c.batch_events.max_size > 1:
        not_before = now + c.batch_events.timeout
        reason = gathering.batching(1, c.batch_events.max_size, not_before)
        out.delayed = "batch"
    else:
        start = await throttling.start_time(conn, policy, event)
        if start is not None and start > now:
            not_before, reason = start, f"throttled until {start.isoformat()}"
            out.delayed = throttling.RULE
    await conn.execute(
        "INSERT INTO runs (id, function_id, event_id, event_ids, status, flow_keys, "
        "queued_at, not_before, reason, singleton_key, traceparent) "
        "VALUES (%s, %s, %s, ARRAY[%s], 'QUEUED', %s, %s, %s, %s, %s, %s)",
        (
            run_id, fn.id, event_id, event_id, policy.concurrency_keys(event),
            now - _seconds(priority.seconds(policy, event)), not_before, reason, single_key,
            traceparent,
        ),
    )  # fmt: skip
    await runs._insert_cancel_waits(
        conn, [NewRun(run_id, fn.id, "", [event_id], cancels=cancel_waits(fn, event))]
    )
    if gather_key is not None and not_before is not None:
        await gathering.open_pending(conn, policy, gather_key, run_id)
    if not_before is not None:
        out.timers.append(await store.timer(conn, run_id, store.START_TIMER, fn.id, not_before))
    deadline = await timeouts.start_deadline(conn, policy, run_id, now)
    if deadline is not None:
        out.timers.append(deadline)
    out.run_id, out.created, out.start_now = run_id, True, not_before is None
    return out


def _seconds(value: float) -> Any:
    from datetime import timedelta

    return timedelta(seconds=value)
