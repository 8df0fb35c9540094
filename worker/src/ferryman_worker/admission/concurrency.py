"""Concurrency: at most ``limit`` runs *executing* per slot key (up to two limits).

A run holds a slot exactly while it holds a lease: a sleeping, waiting or retrying run
has let go of its lease and so of its slot, and a worker killed -9 gives its slots back
when its leases expire — nothing to leak. A run that finds its key full waits QUEUED, in
FIFO order of ``queued_at`` per key (priority shifts it); one key never waits on another.
Deciding takes a transaction-level advisory lock per slot key, so any number of workers
agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ferryman_worker.admission import store
from ferryman_worker.admission.policy import FlowPolicy, label

_ACTIVE = (
    "SELECT count(*) FROM runs WHERE lease_owner IS NOT NULL AND flow_keys IS NOT NULL "
    f"AND lease_expires > now() AND status NOT IN {store.TERMINAL} "
    "AND %(k)s = ANY(flow_keys) AND id <> %(run)s"
)
# Runs queued ahead of this one on the key and free to start; counting stops at the limit.
_AHEAD = (
    "SELECT count(*) FROM (SELECT 1 FROM runs WHERE status = 'QUEUED' "
    "AND queued_at IS NOT NULL AND (flow_keys[1] = %(k)s OR flow_keys[2] = %(k)s) "
    "AND (queued_at, id) < (%(q)s, %(run)s) "
    "AND (not_before IS NULL OR not_before <= now()) LIMIT %(limit)s) ahead"
)
# The heads are touched, so the sweep leaves them alone while their jobs are on the way.
_HEADS = (
    "UPDATE runs SET updated_at = now() WHERE id IN (SELECT id FROM runs "
    "WHERE status = 'QUEUED' AND queued_at IS NOT NULL "
    "AND (flow_keys[1] = %(k)s OR flow_keys[2] = %(k)s) "
    "AND (not_before IS NULL OR not_before <= now()) ORDER BY queued_at, id LIMIT %(free)s) "
    "RETURNING id, function_id"
)


async def lock(conn: Any, keys: list[str]) -> None:
    for key in sorted(set(keys)):
        await store.lock(conn, "slot", key)


async def held_by(
    conn: Any, policy: FlowPolicy, run_id: str, keys: list[str], queued_at: datetime
) -> str | None:
    """Why the run may not take a slot now (None: it may). Call under :func:`lock`."""
    for key, limit in zip(keys, policy.limits, strict=False):
        args = {"k": key, "run": run_id, "q": queued_at, "limit": limit}
        active = (await (await conn.execute(_ACTIVE, args)).fetchone())[0]
        if active >= limit:
            return f"concurrency key {label(key)} full ({active}/{limit})"
        ahead = (await (await conn.execute(_AHEAD, args)).fetchone())[0]
        if active + ahead >= limit:
            return f"concurrency key {label(key)}: {ahead} queued ahead ({active}/{limit} running)"
    return None


async def heads(conn: Any, policy: FlowPolicy, keys: list[str]) -> list[tuple[str, str]]:
    """The queued runs that may take the free slots of ``keys`` now, in queue order."""
    found: dict[str, str] = {}
    for key, limit in zip(keys, policy.limits, strict=False):
        active = (await (await conn.execute(_ACTIVE, {"k": key, "run": ""})).fetchone())[0]
        if active >= limit:
            continue
        cur = await conn.execute(_HEADS, {"k": key, "free": limit - active})
        for run_id, function_id in await cur.fetchall():
            found[run_id] = function_id
    return list(found.items())
