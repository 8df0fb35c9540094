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


def _active(fn_scoped: bool) -> str:
    """Runs holding a slot of key ``k`` (other than ``run``)."""
    return (
        "SELECT count(*) FROM runs WHERE lease_owner IS NOT NULL AND flow_keys IS NOT NULL "
        f"AND lease_expires > now() AND status NOT IN {store.TERMINAL} "
        "AND %(k)s = ANY(flow_keys) AND id <> %(run)s" + _of_fn(fn_scoped)
    )


def _queued(fn_scoped: bool) -> str:
    """Runs queued on key ``k`` and free to start."""
    return (
        "status = 'QUEUED' AND queued_at IS NOT NULL" + _of_fn(fn_scoped) + " AND "
        "(flow_keys[1] = %(k)s OR flow_keys[2] = %(k)s) "
        "AND (not_before IS NULL OR not_before <= now())"
    )


def _of_fn(fn_scoped: bool) -> str:
    # A function-scoped key belongs to one function: saying so lets PostgreSQL use the
    # per-function partial indexes (runs_flow_leased, runs_flow_queued) instead of reading
    # every run; app- and account-scoped keys span functions.
    return " AND function_id = %(fn)s" if fn_scoped else ""


def _counts(fn_scoped: bool) -> str:
    """Slots taken on ``k``, and runs queued ahead of ``run`` (counting stops at the limit)."""
    return (
        f"SELECT ({_active(fn_scoped)}), (SELECT count(*) FROM (SELECT 1 FROM runs "
        f"WHERE {_queued(fn_scoped)} AND (queued_at, id) < (%(q)s, %(run)s) "
        "LIMIT %(limit)s) ahead)"
    )


def _heads(fn_scoped: bool) -> str:
    """The heads of ``k``'s queue, as many as it has free slots, touched so that the sweep
    leaves them alone while their jobs are on the way."""
    return (
        "UPDATE runs SET updated_at = now() WHERE id IN (SELECT id FROM runs "
        f"WHERE {_queued(fn_scoped)} ORDER BY queued_at, id "
        f"LIMIT greatest(0, %(limit)s - ({_active(fn_scoped)}))) RETURNING id, function_id"
    )


_SQL = {scoped: (_counts(scoped), _heads(scoped)) for scoped in (False, True)}


async def lock(conn: Any, keys: list[str]) -> None:
    for key in sorted(set(keys)):
        await store.lock(conn, "slot", key)


async def held_by(
    conn: Any, policy: FlowPolicy, run_id: str, keys: list[str], queued_at: datetime
) -> str | None:
    """Why the run may not take a slot now (None: it may). Call under :func:`lock`."""
    for key, option in zip(keys, policy.fn.config.concurrency, strict=False):
        limit = option.limit
        args = {"k": key, "run": run_id, "q": queued_at, "limit": limit, "fn": policy.id}
        counts, _ = _SQL[option.scope == "fn"]
        active, ahead = await (await conn.execute(counts, args)).fetchone()
        if active >= limit:
            return f"concurrency key {label(key)} full ({active}/{limit})"
        if active + ahead >= limit:
            return f"concurrency key {label(key)}: {ahead} queued ahead ({active}/{limit} running)"
    return None


async def heads(conn: Any, policy: FlowPolicy, keys: list[str]) -> list[tuple[str, str]]:
    """The queued runs that may take the free slots of ``keys`` now, in queue order."""
    found: dict[str, str] = {}
    for key, option in zip(keys, policy.fn.config.concurrency, strict=False):
        _, touch = _SQL[option.scope == "fn"]
        args = {"k": key, "run": "", "limit": option.limit, "fn": policy.id}
        for run_id, function_id in await (await conn.execute(touch, args)).fetchall():
            found[run_id] = function_id
    return list(found.items())
