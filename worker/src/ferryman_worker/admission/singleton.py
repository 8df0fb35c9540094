"""Singleton: one active (not ended) run per function and key. ``skip`` drops the new
event (recorded as skipped, rule ``singleton``); ``cancel`` cancels the active run and
starts the new one."""

from __future__ import annotations

from typing import Any

from ferryman import Event
from ferryman_worker.admission import store
from ferryman_worker.admission.policy import FlowPolicy

RULE = "singleton"


async def active(conn: Any, policy: FlowPolicy, event: Event) -> tuple[str | None, list[str]]:
    """The new run's singleton key and the active runs holding it (under a key lock)."""
    if policy.fn.config.singleton is None:
        return None, []
    key = policy.key(RULE, event)
    await store.lock(conn, policy.id, RULE, key)
    cur = await conn.execute(
        "SELECT id FROM runs WHERE function_id = %s AND singleton_key = %s "
        f"AND status NOT IN {store.TERMINAL}",
        (policy.id, key),
    )
    return key, [row[0] for row in await cur.fetchall()]
