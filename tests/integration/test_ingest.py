"""Events of concurrent requests are stored by one group commit, each caller told its own
receive time; a repeated id keeps its first version."""

from __future__ import annotations

import asyncio

import pytest

from ferryman import Event
from tests.harness import Stack

pytestmark = pytest.mark.integration


async def test_concurrent_stores_share_statements_and_each_gets_its_own_answer(
    stack: Stack,
) -> None:
    bus = await stack.bus()
    first = await bus.store([Event(name="ingest.a", data={"v": "first"}, id="dup")])
    singles = [[Event(name="ingest.a", data={"i": i}, id=f"e{i}")] for i in range(40)]
    singles.append([Event(name="ingest.a", data={"v": "second"}, id="dup")])
    answers = await asyncio.gather(*(bus.store(events) for events in singles))

    assert [list(a) for a in answers] == [[e[0].id] for e in singles]
    assert answers[-1]["dup"] == first["dup"], "a repeated id keeps its first receive time"
    rows = stack.query("SELECT id, data FROM events WHERE name = 'ingest.a'")
    assert len(rows) == 41
    assert dict(rows)["dup"] == {"v": "first"}
    # Rows written by one statement share a transaction id (xmin).
    [(transactions,)] = stack.query(
        "SELECT count(DISTINCT xmin::text) FROM events WHERE name = 'ingest.a' AND id <> 'dup'"
    )
    assert transactions <= 3, f"40 concurrent single-event stores took {transactions} commits"
