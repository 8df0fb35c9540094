"""What a person sees in the logs while runs retry, sleep, wait and fail, and while
PostgreSQL is down for a while: in JSON and in the console format."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from ferryman import Event
from ferryman_jetstream import subjects as S
from tests.harness import Stack, own_postgres, wait_for

pytestmark = pytest.mark.integration


def lines_of(path: Path) -> list[str]:
    return path.read_text(errors="replace").splitlines()


def log_of(stack: Stack, proc: subprocess.Popen[bytes]) -> Path:
    return stack.tmp / f"worker-{stack.processes.index(proc)}.log"


async def test_json_logs_follow_a_run_through_retries_and_sleeps(stack: Stack) -> None:
    proc = stack.spawn_worker(
        "tests.apps.watched_app", FERRYMAN_LOG_FORMAT="json", FERRYMAN_WORKER_ID="w-json"
    )
    try:
        await stack.wait_worker_ready(proc)
        event = await stack.send("watch.flaky", {"fail": 2, "sleep": 1})
        await stack.wait_run(event, "COMPLETED", timeout=30)
        doomed = await stack.send("watch.doomed", {})
        await stack.wait_run(doomed, "FAILED", timeout=30)
    finally:
        proc.terminate()
        proc.wait(30)
    records = [json.loads(line) for line in lines_of(log_of(stack, proc)) if line.startswith("{")]
    assert records, "the worker logged JSON"
    [run_id] = {r["run_id"] for r in records if r.get("function_id") == "watch-flaky"}
    mine = [r for r in records if r.get("run_id") == run_id]
    said = [r["msg"] for r in mine]
    assert any("started by watch.flaky" in m for m in said), said
    retries = [r for r in mine if "retrying in" in r["msg"]]
    assert [(r["step_id"], r["attempt"]) for r in retries] == [("charge", 1), ("charge", 2)]
    assert "failed (attempt 1/5): ConnectionError: card processor unavailable" in retries[0]["msg"]
    assert any(m.startswith(f"run {run_id} sleeping until") for m in said), said
    assert any(m.startswith(f"run {run_id} completed in") for m in said), said
    assert all(r["worker"] == "w-json" for r in records)
    failed = [
        r for r in records if r.get("function_id") == "watch-doomed" and r["level"] == "warning"
    ]
    assert any("failed for good (attempt 2/2)" in r["msg"] for r in failed), failed
    assert any(" failed after " in r["msg"] for r in failed), failed


async def test_postgresql_down_is_one_line_and_its_return_another(stack: Stack) -> None:
    async with own_postgres(stack) as alone:
        await _outage(alone)


async def _outage(stack: Stack) -> None:
    proc = stack.spawn_worker("tests.apps.watched_app")
    try:
        await stack.wait_worker_ready(proc)
        first = await stack.send("watch.slow", {"seconds": 0})
        await stack.wait_run(first, "COMPLETED", timeout=30)
        stack.pg.stop()
        try:
            bus = await stack.bus()
            for _ in range(20):  # events reach JetStream while the database is away
                event = Event(name="watch.slow", data={"seconds": 0})
                await bus.js.publish(S.event_subject(event.name), event.model_dump_json().encode())
            await asyncio.sleep(8)
        finally:
            stack.pg.start()
        logfile = log_of(stack, proc)
        await wait_for(lambda: " is back after " in logfile.read_text(), 60, "no recovery line")
    finally:
        proc.terminate()
        proc.wait(30)
    text = log_of(stack, proc).read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]
    down = [line for line in text.splitlines() if "unavailable (" in line]
    assert 1 <= len(down) <= 3, down  # checkpoints, pulls, perhaps the repair sweep


async def test_nats_down_is_one_line_and_its_return_another(stack: Stack) -> None:
    proc = stack.spawn_worker("tests.apps.watched_app")
    logfile = log_of(stack, proc)
    try:
        await stack.wait_worker_ready(proc)
        first = await stack.send("watch.slow", {"seconds": 0})
        await stack.wait_run(first, "COMPLETED", timeout=30)
        stack.nats.kill()  # a crash: kill -9, JetStream's files stay on disk
        await asyncio.sleep(8)
        stack.nats.start()  # same port, same store
        await wait_for(lambda: " is back after " in logfile.read_text(), 60, "no recovery line")
        after = await stack.send("watch.slow", {"seconds": 0})
        await stack.wait_run(after, "COMPLETED", timeout=60)
    finally:
        proc.terminate()
        proc.wait(30)
    text = logfile.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]
    down = [line for line in text.splitlines() if "NATS" in line]
    assert len(down) == 2, down  # it went, it came back: nothing else, not even at exit
    assert "NATS unavailable (" in down[0], down
    assert "NATS is back after " in down[1], down
    assert len(text.splitlines()) < 60, text[-3000:]  # no line per retry while it was down
