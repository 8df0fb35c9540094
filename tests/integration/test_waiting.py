"""wait_for_event, cancel_on, cancel, invoke, idempotency, trigger filters and replay,
end to end through the matcher, NATS and PostgreSQL, including the races."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from examples import services
from tests.apps import waiting_app
from tests.harness import Stack, wait_for

pytestmark = pytest.mark.integration


def n(kind: str, **match: object) -> int:
    return len(services.records(kind, **match))


def events_named(stack: Stack, name: str) -> list[tuple[object, ...]]:
    return stack.query("SELECT id, data FROM events WHERE name = %s", name)


# -- wait_for_event ----------------------------------------------------------------------


async def test_a_matching_event_resumes_the_wait_and_others_do_not(stack: Stack) -> None:
    await stack.start_worker(waiting_app.fm)
    order = await stack.send("order.placed", {"orderId": "o-1", "amount": 5})
    await stack.wait_run(order, "WAITING")
    await stack.send("payment.done", {"orderId": "o-2"})
    await stack.send("payment.unrelated", {"orderId": "o-1"})
    await asyncio.sleep(0.5)
    assert stack.runs_of(order)[0][2] == "WAITING"

    await stack.send("payment.done", {"orderId": "o-1", "amount": 5})
    run = await stack.wait_run(order)
    assert run[3] == {"paid": {"orderId": "o-1", "amount": 5}}
    assert n("prepare") == 1
    assert n("after") == 1


async def test_the_timeout_resumes_the_wait_with_none(stack: Stack) -> None:
    await stack.start_worker(waiting_app.fm)
    order = await stack.send("order.placed", {"orderId": "o-1", "timeout": 1})
    run = await stack.wait_run(order, timeout=20)
    assert run[3] == {"paid": None}


async def test_an_event_sent_before_the_wait_began_does_not_count(stack: Stack) -> None:
    await stack.start_worker(waiting_app.fm)
    await stack.send("payment.done", {"orderId": "o-1"})
    await asyncio.sleep(0.3)
    order = await stack.send("order.placed", {"orderId": "o-1", "timeout": 2})
    run = await stack.wait_run(order, timeout=20)
    assert run[3] == {"paid": None}


async def test_an_if_expression_compares_the_trigger_and_the_candidate(stack: Stack) -> None:
    await stack.start_worker(waiting_app.fm)
    order = await stack.send("big.order", {"orderId": "o-9", "amount": 100})
    await stack.wait_run(order, "WAITING")
    await stack.send("payment.done", {"orderId": "o-9", "amount": 50})
    await stack.send("payment.done", {"orderId": "o-9", "amount": 150})
    run = await stack.wait_run(order)
    assert run[3] == {"orderId": "o-9", "amount": 150}


async def test_the_event_arriving_while_the_run_is_still_busy_is_not_lost(stack: Stack) -> None:
    await stack.start_worker(waiting_app.fm)
    event = await stack.send("race.between", {"orderId": "o-5"})
    await wait_for(lambda: n("slow.start") == 1, 10, "slow step never started")
    # The wait is recorded; the run still holds its lease while the slow step runs.
    await stack.send("payment.done", {"orderId": "o-5"})
    run = await stack.wait_run(event, timeout=20)
    assert run[3] == {"paid": {"orderId": "o-5"}, "slow": "slow"}


async def test_an_event_racing_the_timeout_resolves_each_wait_exactly_once(stack: Stack) -> None:
    await stack.start_worker(waiting_app.fm)
    orders = [
        await stack.send("order.placed", {"orderId": f"r-{i}", "timeout": 2}) for i in range(8)
    ]
    for order in orders:
        await stack.wait_run(order, "WAITING")
    await asyncio.sleep(1.9)
    for i in range(8):
        await stack.send("payment.done", {"orderId": f"r-{i}"})
    for i, order in enumerate(orders):
        run = await stack.wait_run(order, timeout=20)
        wait = stack.query("SELECT event_id, resolved_at FROM waits WHERE run_id = %s", run[0])
        assert len(wait) == 1
        assert wait[0][1] is not None
        # Whichever won, the run's result agrees with the one resolution recorded.
        assert (run[3]["paid"] is None) == (wait[0][0] is None)
        if run[3]["paid"] is not None:
            assert run[3]["paid"] == {"orderId": f"r-{i}"}
    assert n("after") == 8


async def test_a_worker_killed_between_matching_and_resuming_still_resumes(
    stack: Stack,
) -> None:
    first = stack.spawn_worker("tests.apps.waiting_app")
    await stack.wait_worker_ready(first)
    order = await stack.send("order.placed", {"orderId": "o-7", "timeout": 60})
    run = await stack.wait_run(order, "WAITING")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    # What a crash right after the matcher's commit leaves: the wait resolved in
    # PostgreSQL, the job that would resume the run never published.
    stack.query(
        "UPDATE waits SET resolved_at = now(), event_id = 'e-x', "
        'event = \'{"name": "payment.done", "data": {"orderId": "o-7"}}\' '
        "WHERE run_id = %s RETURNING 1",
        run[0],
    )
    second = stack.spawn_worker("tests.apps.waiting_app")
    await stack.wait_worker_ready(second)
    done = await stack.wait_run(order, timeout=30)
    assert done[3] == {"paid": {"orderId": "o-7"}}
    assert n("prepare") == 1


async def test_an_event_sent_while_no_worker_runs_is_matched_when_one_starts(
    stack: Stack,
) -> None:
    first = stack.spawn_worker("tests.apps.waiting_app")
    await stack.wait_worker_ready(first)
    order = await stack.send("order.placed", {"orderId": "o-8", "timeout": 60})
    await stack.wait_run(order, "WAITING")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    await stack.send("payment.done", {"orderId": "o-8"})
    second = stack.spawn_worker("tests.apps.waiting_app")
    await stack.wait_worker_ready(second)
    done = await stack.wait_run(order, timeout=30)
    assert done[3] == {"paid": {"orderId": "o-8"}}


# -- cancelling --------------------------------------------------------------------------


async def test_cancel_on_event_cancels_during_a_sleep_and_the_sleep_never_fires(
    stack: Stack,
) -> None:
    await stack.start_worker(waiting_app.fm)
    job = await stack.send("job.started", {"jobId": "j-1", "sleep_seconds": 2})
    run = await stack.wait_run(job, "SLEEPING")
    await stack.send("job.stop", {"jobId": "j-2"})
    await stack.send("job.stop", {"jobId": "j-1"})
    await stack.wait_run(job, "CANCELLED")
    await asyncio.sleep(3)
    assert stack.runs_of(job)[0][2] == "CANCELLED"
    assert n("next") == 0
    cancelled = events_named(stack, "ferryman/function.cancelled")
    assert [e[1]["run_id"] for e in cancelled] == [run[0]]


async def test_cancel_during_a_wait_and_a_later_event_does_not_resume(stack: Stack) -> None:
    await stack.start_worker(waiting_app.fm)
    job = await stack.send("job.started", {"jobId": "j-3", "wait_seconds": 30})
    await stack.wait_run(job, "WAITING")
    await stack.send("job.stop", {"jobId": "j-3"})
    await stack.wait_run(job, "CANCELLED")
    await stack.send("job.signal", {"jobId": "j-3"})
    await asyncio.sleep(1)
    assert stack.runs_of(job)[0][2] == "CANCELLED"
    assert n("next") == 0


async def test_cancel_while_a_step_executes_lets_it_finish_and_runs_nothing_after(
    stack: Stack,
) -> None:
    import httpx

    from ferryman_worker.gateway import Gateway, create_app

    await stack.start_worker(waiting_app.fm)
    job = await stack.send("job.started", {"jobId": "j-4", "step_seconds": 2})
    await wait_for(lambda: n("long.start") == 1, 10, "step never started")
    run_id = stack.runs_of(job)[0][0]

    gateway = Gateway(stack.settings(auth=False))  # tests cancel, not auth
    await gateway.open()
    try:
        transport = httpx.ASGITransport(app=create_app(gateway))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as api:
            response = await api.post(f"/v1/runs/{run_id}/cancel")
            assert response.status_code == 200
            assert response.json()["data"]["status"] == "CANCELLED"
            again = await api.post(f"/v1/runs/{run_id}/cancel")
            assert again.status_code == 409
    finally:
        await gateway.close()

    await wait_for(lambda: n("long.end") == 1, 10, "the executing step did not finish")
    await asyncio.sleep(1.5)
    assert n("next") == 0
    steps = stack.steps_of(run_id)
    assert steps["long"][1] == "COMPLETED"
    assert "nap" not in steps
    assert stack.runs_of(job)[0][2] == "CANCELLED"


async def test_bulk_cancel_by_function(stack: Stack) -> None:
    from ferryman_worker.storage.cancelling import cancel_runs

    await stack.start_worker(waiting_app.fm)
    jobs = [
        await stack.send("job.started", {"jobId": f"b-{i}", "wait_seconds": 30}) for i in range(4)
    ]
    for job in jobs:
        await stack.wait_run(job, "WAITING")
    cancelled = await cancel_runs(
        (await stack.bus()).pool,
        await stack.bus(),
        function_id="waiting-long-job",
        status="WAITING",
    )
    assert len(cancelled) == 4
    for job in jobs:
        await stack.wait_run(job, "CANCELLED")


# -- invoke ------------------------------------------------------------------------------


async def test_invoke_returns_the_other_functions_result(stack: Stack) -> None:
    await stack.start_worker(waiting_app.fm)
    event = await stack.send("calc.requested", {"n": 21, "think": 0.5})
    run = await stack.wait_run(event, timeout=20)
    assert run[3] == 42
    invoked = events_named(stack, "ferryman/function.invoked")
    assert len(invoked) == 1
    assert invoked[0][1]["_ferryman"]["parent_run_id"] == run[0]


async def test_a_failing_invoked_function_raises_in_the_caller(stack: Stack) -> None:
    await stack.start_worker(waiting_app.fm)
    event = await stack.send("calc.requested", {"n": 1, "fail": True})
    run = await stack.wait_run(event, timeout=20)
    assert run[3] == "failed: cannot double that"


async def test_an_invoke_timeout_raises_in_the_caller(stack: Stack) -> None:
    await stack.start_worker(waiting_app.fm)
    event = await stack.send("calc.requested", {"n": 1, "think": 5, "timeout": "1s"})
    run = await stack.wait_run(event, timeout=20)
    assert run[3].startswith("failed: waiting-double did not finish within 1s")


# -- idempotency and filters -------------------------------------------------------------


async def test_an_idempotency_key_allows_one_run_per_key(stack: Stack) -> None:
    await stack.start_worker(waiting_app.fm)
    first = await stack.send("user.seen", {"userId": "u-1"})
    second = await stack.send("user.seen", {"userId": "u-1"})
    other = await stack.send("user.seen", {"userId": "u-2"})
    await stack.wait_run(first)
    await stack.wait_run(other)
    await asyncio.sleep(0.5)
    assert stack.runs_of(second) == []
    assert n("welcome", user="u-1") == 1
    assert n("welcome", user="u-2") == 1


async def test_a_trigger_if_filter_starts_only_matching_runs(stack: Stack) -> None:
    await stack.start_worker(waiting_app.fm)
    small = await stack.send("order.placed", {"orderId": "s", "amount": 5, "timeout": 0.1})
    big = await stack.send("order.placed", {"orderId": "b", "amount": 500, "timeout": 0.1})
    await stack.wait_run(big, function_id="waiting-big-orders")
    await stack.wait_run(small, function_id="waiting-await-payment")
    assert [r[1] for r in stack.runs_of(small)] == ["waiting-await-payment"]


# -- replay ------------------------------------------------------------------------------


async def test_replay_from_a_step_keeps_the_steps_before_it(stack: Stack) -> None:
    from ferryman_worker.storage.replaying import ReplayError, replay_run, replay_runs

    await stack.start_worker(waiting_app.fm)
    first = await stack.send("pipeline.run", {})
    second = await stack.send("pipeline.run", {})
    failed = await stack.wait_run(first, "FAILED")
    await stack.wait_run(second, "FAILED")
    services.record("fixed")
    bus = await stack.bus()

    with pytest.raises(ReplayError, match="no step 'nope'"):
        await replay_run(bus.pool, bus.js, failed[0], from_step="nope")
    replay = await replay_run(bus.pool, bus.js, failed[0], from_step="load")
    await wait_for(
        lambda: stack.query("SELECT status FROM runs WHERE id = %s", replay) == [("COMPLETED",)],
        20,
        "the replay did not complete",
    )
    assert stack.query("SELECT replay_of FROM runs WHERE id = %s", replay) == [(failed[0],)]
    assert n("extract", run=failed[0]) == 1, "extract kept its recorded result"
    assert n("extract", run=replay) == 0

    with pytest.raises(ReplayError, match="only FAILED or CANCELLED"):
        await replay_run(bus.pool, bus.js, replay)

    replays = await replay_runs(
        bus.pool, bus.js, function_id="waiting-flaky-pipeline", status="FAILED"
    )
    assert len(replays) == 2
    for run_id in replays:
        await wait_for(
            lambda run_id=run_id: (
                stack.query("SELECT status FROM runs WHERE id = %s", run_id) == [("COMPLETED",)]
            ),
            20,
        )
