"""2,000 runs over 50 keys, limit 3 per key, three worker processes, one killed -9 midway:
the step bodies' own timestamps never show more than 3 of a key at once, every run
completes, and no key starves."""

from __future__ import annotations

import os
import signal
import time

import pytest

from ferryman import Event
from tests.flow.ledger import intervals, max_overlap
from tests.harness import Stack, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RUNS, KEYS, LIMIT = 2000, 50, 3


def completed(stack: Stack) -> int:
    return int(
        stack.query("SELECT count(*) FROM runs WHERE status = 'COMPLETED'")[0][0]  # type: ignore[arg-type]
    )


def diagnose(stack: Stack) -> str:
    """What the runs that did not complete are doing, for the failure message."""
    stuck = stack.query(
        "SELECT status, reason, lease_owner, lease_expires < now(), flow_keys, "
        "now() - updated_at FROM runs WHERE status <> 'COMPLETED' LIMIT 8"
    )
    busy = stack.query(
        "SELECT state, wait_event_type, wait_event, now() - xact_start, left(query, 80) "
        "FROM pg_stat_activity WHERE datname = current_database() AND state <> 'idle' "
        "AND pid <> pg_backend_pid()"
    )
    for proc in stack.processes[1:]:
        os.kill(proc.pid, signal.SIGUSR1)
    time.sleep(2)
    dumps = "".join(p.read_text()[-6000:] for p in stack.ledger.parent.glob("tasks-*.txt"))
    (stack.ledger.parent.parent / "DUMPS.txt").write_text(dumps)
    logs = "\n".join(
        (stack.tmp / f"worker-{n}.log").read_text(errors="replace")[-1500:] for n in (1, 2)
    )
    return f"{completed(stack)}/{RUNS} completed; not: {stuck}\nactivity: {busy}\n{logs}"


@pytest.mark.timeout(420)
async def test_keyed_limit_holds_across_processes_and_a_kill(stack: Stack) -> None:
    procs = [stack.spawn_worker("tests.apps.flow_stress_app") for _ in range(3)]
    for proc in procs:
        await stack.wait_worker_ready(proc, timeout=60)
    bus = await stack.bus()
    began = time.time()
    events = [Event(name="stress.keyed", data={"org": f"org-{n % KEYS}"}) for n in range(RUNS)]
    for n in range(0, RUNS, 250):
        await bus.send(events[n : n + 250])
    await wait_for(lambda: completed(stack) >= RUNS // 3, 120, "a third never completed")
    killed_at = time.time()
    os.killpg(procs[0].pid, signal.SIGKILL)
    procs[0].wait()
    await wait_for(lambda: completed(stack) >= RUNS, 200, lambda: diagnose(stack))
    statuses = stack.query("SELECT status, count(*) FROM runs GROUP BY status")
    assert statuses == [("COMPLETED", RUNS)]
    # A body the killed worker never finished ran until the kill at the latest.
    peaks = max_overlap("stress", open_until=killed_at)
    assert len(peaks) == KEYS
    assert max(peaks.values()) == LIMIT, peaks  # the limit was reached, and never passed
    # No key starved: each key's last run ended about when the others' did (Jain's
    # fairness index over the keys' completion times, from the first send).
    last_end: dict[str, float] = {}
    for _, end, key in intervals("stress").values():
        if end is not None:
            last_end[key] = max(last_end.get(key, 0.0), end - began)
    times = list(last_end.values())
    assert len(times) == KEYS
    jain = sum(times) ** 2 / (len(times) * sum(t * t for t in times))
    assert jain >= 0.9, (jain, min(times), max(times))
