"""Admission: before a worker leases a run of a function with flow control, decide in one
transaction whether it may start now. If so the run is leased to the worker (its slot is
taken); if not it is left QUEUED with a reason a person can read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ferryman import Event
from ferryman_worker.admission import concurrency, gathering, store, timeouts
from ferryman_worker.admission.policy import FlowPolicy
from ferryman_worker.storage.checkpoints import PendingTimer

GO = "go"  # leased to this worker: advance it
HELD = "held"  # stays QUEUED (reason recorded); a wake-up or timer brings it back
BUSY = "busy"  # another worker holds it
GONE = "gone"  # ended, or not found


@dataclass
class Admitted:
    verdict: str
    rule: str | None = None  # what held it
    waited: float | None = None  # seconds from creation to a first start
    timers: list[PendingTimer] = field(default_factory=list)


async def admit(
    conn: Any, policy: FlowPolicy, run_id: str, owner: str, lease_seconds: float
) -> Admitted:
    cur = await conn.execute(
        "SELECT status, lease_owner, coalesce(lease_expires > now(), false), flow_keys, "
        "queued_at, coalesce(not_before > now(), false), started_at IS NULL, now(), "
        "extract(epoch FROM now() - created_at)::float8 FROM runs WHERE id = %s FOR UPDATE",
        (run_id,),
    )
    row = await cur.fetchone()
    if row is None or row[0] in ("COMPLETED", "FAILED", "CANCELLED"):
        return Admitted(GONE)
    _status, lease_owner, leased, keys, queued_at, early, first, now, age = row
    if leased:
        return Admitted(GO if lease_owner == owner else BUSY)
    if early:  # throttled, debouncing or batching: its start timer will bring it back
        return Admitted(HELD, rule="not_before")
    if queued_at is None:
        queued_at = now
    if keys is None and policy.fn.config.concurrency:
        keys = await _keys_from_event(conn, policy, run_id)
    if keys:
        await concurrency.lock(conn, keys)
        reason = await concurrency.held_by(conn, policy, run_id, keys, queued_at)
        if reason is not None:
            await conn.execute(
                "UPDATE runs SET status = 'QUEUED', queued_at = %s, reason = %s, "
                "updated_at = now() WHERE id = %s",
                (queued_at, reason, run_id),
            )
            return Admitted(HELD, rule="concurrency")
    await conn.execute(
        "UPDATE runs SET lease_owner = %s, lease_expires = now() + make_interval(secs => %s), "
        "status = CASE WHEN status IN ('QUEUED', 'SLEEPING') THEN 'RUNNING' ELSE status END, "
        "queued_at = NULL, not_before = NULL, reason = nullif(reason, %s), "
        "started_at = coalesce(started_at, now()), updated_at = now() WHERE id = %s",
        (owner, lease_seconds, store.ARRIVED, run_id),
    )
    admitted = Admitted(GO)
    if first:
        if gathering.rule_of(policy):  # only debounce and batch keep a pending run
            await gathering.release(conn, run_id)
        admitted.waited = age
        deadline = await timeouts.finish_deadline(conn, policy, run_id, now)
        if deadline is not None:
            admitted.timers.append(deadline)
    return admitted


async def _keys_from_event(conn: Any, policy: FlowPolicy, run_id: str) -> list[str] | None:
    """Slot keys for a run created elsewhere (an invoke, a replay), from its event."""
    cur = await conn.execute(
        "SELECT e.id, e.name, e.data, e.ts FROM runs r JOIN events e ON e.id = r.event_id "
        "WHERE r.id = %s",
        (run_id,),
    )
    row = await cur.fetchone()
    event = Event(id=row[0], name=row[1], data=row[2], ts=row[3]) if row else Event(name="none")
    keys = policy.concurrency_keys(event)
    await conn.execute("UPDATE runs SET flow_keys = %s WHERE id = %s", (keys, run_id))
    return keys
