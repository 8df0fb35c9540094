"""Debounce and batch: events gather in one pending QUEUED run per function, rule and key
(the ``flow_pending`` row) until it may start.

- debounce: each event replaces the run's event and pushes its start to ``period`` from
  now, but never past ``timeout`` after the first event; the replaced event is recorded
  as skipped (rule ``debounce``) pointing at the run that absorbed it;
- batch: each event is appended; the run starts when ``max_size`` events are in, or
  ``timeout`` after the first.

The pending run is changed only while it is QUEUED and unleased: the admission that
starts it deletes the ``flow_pending`` row under the run's row lock, so an event never
joins a run that has already loaded its events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ferryman import Event
from ferryman_worker.admission import store
from ferryman_worker.admission.policy import FlowPolicy


@dataclass
class Folded:
    run_id: str
    start_now: bool
    timer: Any = None


def rule_of(policy: FlowPolicy) -> str | None:
    c = policy.fn.config
    return "debounce" if c.debounce else "batch" if c.batch_events else None


async def fold(conn: Any, policy: FlowPolicy, event: Event) -> tuple[str, Folded | None]:
    """Add ``event`` to the pending run of its key, if there is one; returns the key."""
    rule = rule_of(policy)
    assert rule is not None
    key = policy.key(rule, event)
    await store.lock(conn, policy.id, rule, key)
    cur = await conn.execute(
        "SELECT p.run_id, p.first_at, r.event_id FROM flow_pending p "
        "JOIN runs r ON r.id = p.run_id WHERE p.function_id = %s AND p.rule = %s AND p.key = %s",
        (policy.id, rule, key),
    )
    row = await cur.fetchone()
    if row is None:
        return key, None
    run_id, first_at, previous = row
    c = policy.fn.config
    if c.debounce is not None:
        period, cap = c.debounce.period, c.debounce.timeout
        cur = await conn.execute(
            "UPDATE runs SET event_id = %s, event_ids = ARRAY[%s], updated_at = now(), "
            "not_before = CASE WHEN %s::timestamptz IS NULL THEN now() + %s "
            "  ELSE least(now() + %s, %s::timestamptz) END "
            "WHERE id = %s AND status = 'QUEUED' AND lease_owner IS NULL RETURNING not_before",
            (
                event.id, event.id, first_at + cap if cap else None, period, period,
                first_at + cap if cap else None, run_id,
            ),
        )  # fmt: skip
        got = await cur.fetchone()
        if got is None:
            await _stale(conn, policy, rule, key)
            return key, None
        not_before: datetime = got[0]
        await conn.execute(
            "UPDATE runs SET reason = %s WHERE id = %s", (debouncing(not_before), run_id)
        )
        await store.skip(conn, previous, policy.id, "debounce", run_id)
        timer = await store.timer(conn, run_id, store.START_TIMER, policy.id, not_before)
        return key, Folded(run_id, False, timer)
    batch = c.batch_events
    assert batch is not None
    cur = await conn.execute(
        "UPDATE runs SET event_ids = array_append(event_ids, %s), updated_at = now() "
        "WHERE id = %s AND status = 'QUEUED' AND lease_owner IS NULL "
        "RETURNING cardinality(event_ids), not_before",
        (event.id, run_id),
    )
    got = await cur.fetchone()
    if got is None:
        await _stale(conn, policy, rule, key)
        return key, None
    size, not_before = got
    await store.skip(conn, event.id or "", policy.id, "batch", run_id)  # decided: in this batch
    if size >= batch.max_size:
        # Full: it starts now; the reason stays, to say what it waited for.
        await conn.execute(
            "UPDATE runs SET not_before = NULL, reason = %s WHERE id = %s",
            (batching(size, batch.max_size, None), run_id),
        )
        await release(conn, run_id)
        return key, Folded(run_id, True)
    await conn.execute(
        "UPDATE runs SET reason = %s WHERE id = %s",
        (batching(size, batch.max_size, not_before), run_id),
    )
    return key, Folded(run_id, False)


async def _stale(conn: Any, policy: FlowPolicy, rule: str, key: str) -> None:
    """The pending run started meanwhile: forget it, the event starts a new one."""
    await conn.execute(
        "DELETE FROM flow_pending WHERE function_id = %s AND rule = %s AND key = %s",
        (policy.id, rule, key),
    )


async def open_pending(conn: Any, policy: FlowPolicy, key: str, run_id: str) -> None:
    rule = rule_of(policy)
    await conn.execute(
        "INSERT INTO flow_pending (function_id, rule, key, run_id) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (function_id, rule, key) DO UPDATE SET run_id = EXCLUDED.run_id, "
        "first_at = now()",
        (policy.id, rule, key, run_id),
    )


async def release(conn: Any, run_id: str) -> None:
    """The run starts now: later events gather in a new one."""
    await conn.execute("DELETE FROM flow_pending WHERE run_id = %s", (run_id,))


def debouncing(until: datetime) -> str:
    return f"debouncing until {until.isoformat()}"


def batching(size: int, max_size: int, until: datetime | None) -> str:
    when = f" until {until.isoformat()}" if until else ""
    return f"batching ({size}/{max_size} events){when}"
