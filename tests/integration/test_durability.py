"""Durable means durable: kill -9 workers, restart NATS and PostgreSQL, race two workers.

Each test counts side effects in the ledger of ``examples.services`` to prove that no
completed step ran again, and checks that every run still finishes.
"""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime, timedelta

import pytest

from examples import services
from tests.apps import durable_app
from tests.harness import Stack, own_postgres, wait_for

pytestmark = pytest.mark.integration
APP = "tests.apps.durable_app"


def n(kind: str, **match: object) -> int:
    """How many times the ledger recorded ``kind``."""
    return len(services.records(kind, **match))


def kill9(proc: object) -> None:
    os.killpg(proc.pid, signal.SIGKILL)  # type: ignore[attr-defined]
    proc.wait()  # type: ignore[attr-defined]


async def test_worker_killed_mid_step_run_finishes_elsewhere_and_no_completed_step_reruns(
    stack: Stack,
) -> None:
    first = stack.spawn_worker(APP)
    await stack.wait_worker_ready(first)
    event = await stack.send("test.slow", {"seconds": 3})
    await wait_for(lambda: n("slow.start") == 1, 20, "the slow step never started")
    kill9(first)

    second = stack.spawn_worker(APP)
    await stack.wait_worker_ready(second)
    run = await stack.wait_run(event, timeout=40)

    assert run[3] == {"sum": 6}
    assert n("first") == 1, "a completed step ran again"
    assert n("slow.start") == 2, "the interrupted step is executed again"
    assert n("slow.end") == 1
    assert n("last") == 1


async def test_worker_killed_mid_sleep_run_resumes_on_another_worker(stack: Stack) -> None:
    first = stack.spawn_worker(APP)
    await stack.wait_worker_ready(first)
    event = await stack.send("test.sleep", {"seconds": 3})
    await stack.wait_run(event, status="SLEEPING", timeout=20)
    kill9(first)

    second = stack.spawn_worker(APP)
    await stack.wait_worker_ready(second)
    run = await stack.wait_run(event, timeout=30)

    assert run[3] == "woke"
    assert n("before") == 1
    assert n("after") == 1


async def test_nats_restart_mid_run_every_run_finishes(stack: Stack) -> None:
    await stack.start_worker(durable_app.fm)
    events = [await stack.send("test.sleep", {"seconds": 2}) for _ in range(5)]
    for event in events:
        await stack.wait_run(event, status="SLEEPING", timeout=20)

    stack.nats.kill()
    await asyncio.sleep(1.5)
    stack.nats.start()  # same port, same JetStream store

    for event in events:
        await stack.wait_run(event, timeout=40)
    assert n("before") == 5
    assert n("after") == 5


async def test_postgres_restart_mid_run_every_run_finishes(stack: Stack) -> None:
    async with own_postgres(stack) as alone:
        await _postgres_restart_mid_run(alone)


async def _postgres_restart_mid_run(stack: Stack) -> None:
    await stack.start_worker(durable_app.fm)
    events = [await stack.send("test.slow", {"seconds": 2}) for _ in range(3)]
    await wait_for(lambda: n("slow.start") == 3, 20, "slow steps never started")

    stack.pg.kill()
    await asyncio.sleep(1)
    stack.pg.start()

    for event in events:
        run = await stack.wait_run(event, timeout=60)
        assert run[3] == {"sum": 6}
    assert n("first") == 3
    assert n("last") == 3


async def test_duplicate_event_id_starts_one_run(stack: Stack) -> None:
    await stack.start_worker(durable_app.fm)
    event = await stack.send("test.sleep", {"seconds": 0}, id="same-id")
    again = await stack.send("test.sleep", {"seconds": 0}, id="same-id")
    assert again == event

    # Bypass JetStream's duplicate window: the same event under another message id.
    bus = await stack.bus()
    await bus.js.publish(
        "ferryman.events.test.sleep",
        b'{"name":"test.sleep","data":{"seconds":0},"id":"same-id"}',
        headers={"Nats-Msg-Id": "another-message"},
    )
    await stack.wait_run(event, timeout=20)
    await asyncio.sleep(1.0)
    assert len(stack.runs_of(event)) == 1
    assert n("before") == 1


async def test_two_workers_racing_on_one_run_store_each_step_once(stack: Stack) -> None:
    first = stack.spawn_worker(APP)
    second = stack.spawn_worker(APP)
    await stack.wait_worker_ready(first)
    await stack.wait_worker_ready(second)
    event = await stack.send("test.stall", {"seconds": 7})

    run = await stack.wait_run(event, timeout=40)
    await asyncio.sleep(5)  # let the frozen worker wake up and try to write its result

    starts = services.records("stall.start", run=run[0])
    assert len(starts) == 2, "the run was taken over while the first worker was frozen"
    assert len({s["pid"] for s in starts}) == 2
    steps = stack.query("SELECT step_id, output FROM steps WHERE run_id = %s", run[0])
    assert len(steps) == 1, "each step result is stored once"
    assert steps[0][1] == run[3], "the stored step result is the one the run returned"
    assert run[3] == f"done by {starts[1]['pid']}", "the frozen worker's late write was refused"


async def test_cron_tick_missed_while_down_fires_once(stack: Stack) -> None:
    function_id = "durable-every-minute"
    long_ago = datetime.now(UTC) - timedelta(minutes=30)
    stack.query(
        "INSERT INTO cron_ticks (function_id, last_tick) VALUES (%s, %s) RETURNING 1",
        function_id,
        long_ago,
    )
    started = datetime.now(UTC).replace(second=0, microsecond=0)

    await stack.start_worker(durable_app.fm)

    def ticks() -> list[datetime]:
        rows = stack.query(
            "SELECT e.data->>'tick' FROM runs r JOIN events e ON e.id = r.event_id "
            "WHERE r.function_id = %s AND r.status = 'COMPLETED'",
            function_id,
        )
        return sorted(datetime.fromisoformat(r[0]) for r in rows)

    await wait_for(lambda: len(ticks()) >= 1, 20, "the missed tick never fired")
    # A second worker starting now finds the tick already taken.
    await stack.start_worker(durable_app.fm)
    await asyncio.sleep(1.5)

    fired = ticks()
    assert len(fired) == len(set(fired)), "no tick runs twice"
    assert fired[0] >= started, "30 missed ticks fire once, for the newest, not 30 times"
    # Only the catch-up, and a real tick if the minute turned during the test.
    assert len(fired) <= 2
