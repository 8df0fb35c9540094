"""Flow control through real NATS and PostgreSQL, judged from the step bodies' timestamps."""

from __future__ import annotations

import asyncio
import time

import pytest

from examples import services
from ferryman_worker.storage import queries
from tests.apps import flow_app
from tests.flow.ledger import intervals, max_overlap, starts
from tests.harness import Stack, wait_for

pytestmark = pytest.mark.integration


def statuses(stack: Stack, fn: str) -> dict[str, int]:
    rows = stack.query(
        "SELECT status, count(*) FROM runs WHERE function_id = %s GROUP BY status", f"flow-{fn}"
    )
    return {r[0]: r[1] for r in rows}


async def wait_completed(stack: Stack, fn: str, n: int, timeout: float = 30) -> None:
    await wait_for(
        lambda: statuses(stack, fn).get("COMPLETED", 0) >= n,
        timeout,
        lambda: f"{fn}: {statuses(stack, fn)}",
    )


async def test_concurrency_key_limits_each_key_and_never_delays_another(stack: Stack) -> None:
    await stack.start_worker(flow_app.fm)
    for n in range(6):
        await stack.send("flow.keyed", {"org": "acme", "seconds": 0.5, "n": n})
    await stack.send("flow.keyed", {"org": "other", "seconds": 0.5})

    def held() -> list[str]:
        rows = stack.query(
            "SELECT reason FROM runs WHERE function_id = 'flow-keyed' AND status = 'QUEUED'"
        )
        return [r[0] or "" for r in rows]

    await wait_for(
        lambda: any(r.startswith("concurrency key acme") and "2/2" in r for r in held()),
        10,
        lambda: f"no run said its key was full: {held()}",
    )
    await wait_completed(stack, "keyed", 7)
    assert max_overlap("keyed") == {"acme": 2, "other": 1}
    spans = intervals("keyed")
    other = next(s[0] for s in spans.values() if s[2] == "other")
    acme = sorted(s[0] for s in spans.values() if s[2] == "acme")
    # the hot key's queue did not hold the other key back: it ran before acme's last pair
    assert other < acme[4], (other, acme)


async def test_an_unkeyed_limit_is_the_limit_not_three_times_it(stack: Stack) -> None:
    await stack.start_worker(flow_app.fm)
    for _ in range(4):
        await stack.send("flow.one", {"seconds": 0.3})
    await wait_completed(stack, "one-at-a-time", 4)
    assert max_overlap("one") == {None: 1}


async def test_a_sleeping_run_gives_its_slot_back_and_queues_again(stack: Stack) -> None:
    await stack.start_worker(flow_app.fm)
    first = await stack.send("flow.one", {"seconds": 0.1, "nap": 1.5})
    await stack.wait_run(first, "SLEEPING")
    second = await stack.send("flow.one", {"seconds": 0.1})
    await stack.wait_run(second, "COMPLETED", timeout=5)
    # the second ran while the first slept
    assert not services.records("after-nap")
    await stack.wait_run(first, "COMPLETED", timeout=10)


async def test_throttle_spaces_starts_and_delays_rather_than_drops(stack: Stack) -> None:
    await stack.start_worker(flow_app.fm)
    t0 = time.time()
    for _ in range(3):
        await stack.send("flow.throttled", {"org": "a", "seconds": 0})
    await stack.send("flow.throttled", {"org": "b", "seconds": 0})
    await wait_for(
        lambda: any(
            (r[0] or "").startswith("throttled until")
            for r in stack.query("SELECT reason FROM runs WHERE status = 'QUEUED'")
        ),
        5,
        "no run was shown as throttled",
    )
    await wait_completed(stack, "throttled", 4, timeout=15)
    by_key: dict[str, list[float]] = {}
    for start, _, key in intervals("throttled").values():
        by_key.setdefault(key, []).append(start)
    a = sorted(by_key["a"])
    # one start per second for key a: the k-th no earlier than k seconds after the sends
    assert [x - t0 >= k - 0.05 for k, x in enumerate(a)] == [True] * 3, (t0, a)
    # key b has its own budget: sharing a's, its slot would be the fourth, 3 s after t0
    assert min(by_key["b"]) - t0 < 2.9, (t0, by_key["b"])
    # the runs that waited still say why (the API's held_reason)
    reasons = [r[0] or "" for r in stack.query("SELECT reason FROM runs WHERE status <> 'QUEUED'")]
    assert sum(r.startswith("throttled until") for r in reasons) >= 2, reasons


async def test_throttle_burst_lets_that_many_start_back_to_back(stack: Stack) -> None:
    await stack.start_worker(flow_app.fm)
    t0 = time.time()
    for _ in range(4):
        await stack.send("flow.burst", {"seconds": 0})
    await wait_completed(stack, "burst", 4, timeout=15)
    s = starts("burst")
    assert s[2] - s[0] < 1.5, (t0, s)  # three at once (without the burst: 2 s apart)
    assert s[3] - t0 >= 0.95, (t0, s)  # the fourth waits its turn


async def test_rate_limit_skips_excess_events_and_records_them(stack: Stack) -> None:
    worker = await stack.start_worker(flow_app.fm)
    ids = [await stack.send("flow.rated", {"user": "u1", "seconds": 0}) for _ in range(3)]
    other = await stack.send("flow.rated", {"user": "u2", "seconds": 0})
    await stack.wait_run(ids[0])
    await stack.wait_run(other)
    await wait_for(
        lambda: len(stack.query("SELECT 1 FROM skipped_events WHERE rule = 'rate_limit'")) == 2,
        10,
        "the skipped events were not recorded",
    )
    assert len(stack.runs_of(ids[1])) == len(stack.runs_of(ids[2])) == 0
    answer = await queries.event_runs(worker.pool, ids[1])
    assert answer is not None
    assert answer == []
    skipped = await queries.event_skips(worker.pool, ids[1])
    assert [s["skipped"] for s in skipped] == ["rate_limit"]
    assert skipped[0]["function_id"] == "flow-rate-limited"


async def test_debounce_runs_once_with_the_last_event(stack: Stack) -> None:
    await stack.start_worker(flow_app.fm)
    for n in range(3):
        await stack.send("flow.debounced", {"org": "a", "n": n})
        await asyncio.sleep(0.2)
    await stack.send("flow.debounced", {"org": "b", "n": 9})
    await wait_for(
        lambda: any(
            (r[0] or "").startswith("debouncing")
            for r in stack.query("SELECT reason FROM runs WHERE status = 'QUEUED'")
        ),
        5,
        "no run was shown as debouncing",
    )
    await wait_completed(stack, "debounced", 2, timeout=10)
    await asyncio.sleep(1.5)
    got = sorted((r["org"], r["n"]) for r in services.records("debounced"))
    assert got == [("a", 2), ("b", 9)]
    reasons = [r[0] for r in stack.query("SELECT reason FROM runs WHERE status = 'COMPLETED'")]
    assert [r.startswith("debouncing until") for r in reasons] == [True, True], reasons


async def test_debounce_timeout_caps_the_delay(stack: Stack) -> None:
    await stack.start_worker(flow_app.fm)
    began = time.time()
    n = 0
    while time.time() - began < 6.0:  # an event every 0.4 s: never 1 s of quiet
        await stack.send("flow.debounced", {"org": "busy", "n": n})
        n += 1
        await asyncio.sleep(0.4)
    last_send = time.time()
    runs = services.records("debounced", org="busy")
    assert runs, "the debounce timeout (3 s) never let a run start while events kept coming"
    assert 3.0 <= runs[0]["ts"] - began < last_send - began
    assert runs[0]["n"] > 0  # it ran with the latest event at the time, not the first


async def test_batch_collects_events_and_a_timeout_runs_a_partial_batch(stack: Stack) -> None:
    await stack.start_worker(flow_app.fm)
    t0 = time.time()
    for n in range(4):
        await stack.send("flow.batched", {"n": n})
    await wait_completed(stack, "batched", 2, timeout=15)
    runs = services.records("batched")
    assert [r["ns"] for r in runs] == [[0, 1, 2], [3]]
    assert runs[1]["ts"] - t0 >= 1.9  # the partial batch waited for the 2 s timeout
    reasons = stack.query("SELECT reason FROM runs WHERE status = 'COMPLETED' ORDER BY created_at")
    assert reasons[0] == ("batching (3/3 events)",)
    assert reasons[1][0].startswith("batching (1/3 events) until"), reasons


async def test_priority_runs_the_higher_priority_first(stack: Stack) -> None:
    await stack.start_worker(flow_app.fm)
    await stack.send("flow.prioritized", {"prio": 0, "seconds": 1.0, "org": "blocker"})
    await wait_for(lambda: bool(services.records("start", fn="prioritized")), 5, "no start")
    await stack.send("flow.prioritized", {"prio": 0, "seconds": 0, "org": "low"})
    await stack.send("flow.prioritized", {"prio": 0, "seconds": 0, "org": "low2"})
    await stack.send("flow.prioritized", {"prio": 60, "seconds": 0, "org": "high"})
    await wait_completed(stack, "prioritized", 4)
    order = [r["key"] for r in services.records("start", fn="prioritized")]
    assert order == ["blocker", "high", "low", "low2"]


async def test_singleton_skip_drops_events_while_a_run_is_active(stack: Stack) -> None:
    await stack.start_worker(flow_app.fm)
    first = await stack.send("flow.single-skip", {"org": "a", "seconds": 1.0})
    await stack.wait_run(first, "RUNNING")
    second = await stack.send("flow.single-skip", {"org": "a", "seconds": 0})
    other = await stack.send("flow.single-skip", {"org": "b", "seconds": 0})
    await stack.wait_run(first)
    await stack.wait_run(other)
    assert stack.runs_of(second) == []
    assert stack.query("SELECT rule FROM skipped_events WHERE event_id = %s", second) == [
        ("singleton",)
    ]
    later = await stack.send("flow.single-skip", {"org": "a", "seconds": 0})
    await stack.wait_run(later)


async def test_singleton_cancel_replaces_the_active_run(stack: Stack) -> None:
    await stack.start_worker(flow_app.fm)
    first = await stack.send("flow.single-cancel", {"seconds": 1.0})
    await wait_for(lambda: bool(services.records("start", fn="single-cancel")), 5, "no start")
    second = await stack.send("flow.single-cancel", {"seconds": 0})
    await stack.wait_run(second)
    await stack.wait_run(first, "CANCELLED")
    await asyncio.sleep(1.0)
    seconds = {r["run"] for r in services.records("second")}
    assert stack.runs_of(second)[0][0] in seconds
    assert stack.runs_of(first)[0][0] not in seconds


async def test_timeouts_finish_cancels_a_run_that_runs_too_long(stack: Stack) -> None:
    await stack.start_worker(flow_app.fm)
    event = await stack.send("flow.finish-timeout", {"seconds": 2.0})
    run = await stack.wait_run(event, "CANCELLED", timeout=10)
    assert "timeouts.finish" in run[4]["message"]
    await asyncio.sleep(1.5)
    assert services.records("late") == []
    cancelled = stack.query(
        "SELECT data FROM events WHERE name = 'ferryman/function.cancelled' "
        "AND data->>'run_id' = %s",
        run[0],
    )
    assert len(cancelled) == 1


async def test_timeouts_start_cancels_a_run_queued_too_long(stack: Stack) -> None:
    await stack.start_worker(flow_app.fm)
    first = await stack.send("flow.start-timeout", {"seconds": 2.0})
    await wait_for(lambda: bool(services.records("start", fn="start-timeout")), 5, "no start")
    second = await stack.send("flow.start-timeout", {"seconds": 0})
    run = await stack.wait_run(second, "CANCELLED", timeout=5)
    assert "timeouts.start" in run[4]["message"]
    await stack.wait_run(first)
    assert len(services.records("start", fn="start-timeout")) == 1
