"""`ferryman dev`: one command, real servers, data kept across restarts, reload on change."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from ferryman_worker.dev.embedded import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]  # starts dev several times

APP = """
import ferryman

fm = ferryman.Ferryman(app_id="devtest")


@fm.function(id="nap", trigger=ferryman.on_event("dev.nap"))
async def nap(ctx: ferryman.Context) -> str:
    await ctx.step.run("before", lambda: "b")
    await ctx.step.sleep("nap", float(ctx.event.data["seconds"]))
    return await ctx.step.run("after", lambda: "VERSION")
"""


class Dev:
    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.log = root / "dev.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ferryman_worker.cli",
                    "dev",
                    "-m",
                    "devapp",
                    "--port",
                    str(self.port),
                ],
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.wait_log("hosting 1 functions", count=self.log.read_text().count("hosting") + 1)

    def wait_log(self, text: str, count: int = 1, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while self.log.read_text(errors="replace").count(text) < count:
            assert self.proc is not None
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.log.read_text()[-3000:]}"
            time.sleep(0.1)

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)

    def api(self, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def run_of(self, event_id: str) -> dict[str, Any]:
        runs = self.api(f"/v1/events/{event_id}/runs")["data"]
        return runs[0] if runs else {}

    def wait_status(self, event_id: str, status: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (run := self.run_of(event_id)).get("status") != status:
            assert time.monotonic() < deadline, f"run never {status}: {run}"
            time.sleep(0.2)
        return run


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children in new sessions included)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    """The pids that still run (zombies count as gone)."""
    running = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            running.add(pid)
    return running


def leftovers(root: Path) -> list[str]:
    return subprocess.run(
        ["pgrep", "-f", str(root / ".ferryman")], check=False, capture_output=True, text=True
    ).stdout.split()


@pytest.fixture
def dev(tmp_path: Path) -> Dev:
    (tmp_path / "devapp.py").write_text(APP.replace("VERSION", "v1"))
    server = Dev(tmp_path, free_port())
    yield server
    if server.proc and server.proc.poll() is None:
        below = descendants(server.proc.pid)
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
        # PostgreSQL and NATS run in sessions of their own: killpg misses them.
        for pid in below:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for pid in leftovers(tmp_path):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


def test_a_sleeping_run_resumes_after_ferryman_dev_restarts(dev: Dev) -> None:
    dev.start()
    [event_id] = dev.api("/e/dev", {"name": "dev.nap", "data": {"seconds": 4}})["ids"]
    dev.wait_status(event_id, "SLEEPING")
    dev.stop()
    assert (dev.root / ".ferryman" / "postgres" / "PG_VERSION").exists()
    assert leftovers(dev.root) == [], "dev stops its PostgreSQL and NATS"

    dev.start()
    run = dev.wait_status(event_id, "COMPLETED")
    assert run["output"] == "v1"


def test_changing_the_code_restarts_the_worker(dev: Dev) -> None:
    dev.start()
    (dev.root / "devapp.py").write_text(APP.replace("VERSION", "v2"))
    dev.wait_log("changed: restarting the worker")
    dev.wait_log("hosting 1 functions", count=2)
    [event_id] = dev.api("/e/dev", {"name": "dev.nap", "data": {"seconds": 0}})["ids"]
    assert dev.wait_status(event_id, "COMPLETED")["output"] == "v2"
    dev.stop()


def cli(dev: Dev, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "ferryman_worker.cli",
            *args,
            "--url",
            f"http://127.0.0.1:{dev.port}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_cli_sends_lists_shows_cancels_and_replays(dev: Dev) -> None:
    dev.start()
    sent = cli(dev, "send", "dev.nap", "--data", '{"seconds": 600}')
    assert sent.returncode == 0, sent.stderr
    event_id = sent.stdout.strip()
    run_id = dev.wait_status(event_id, "SLEEPING")["run_id"]

    listed = cli(dev, "runs", "list", "--status", "SLEEPING")
    assert run_id in listed.stdout
    shown = cli(dev, "runs", "show", run_id)
    assert "nap" in shown.stdout
    assert "SLEEPING" in shown.stdout

    assert cli(dev, "runs", "replay", run_id).returncode != 0, "a sleeping run is not replayable"
    cancelled = cli(dev, "runs", "cancel", run_id)
    assert cancelled.stdout.strip() == f"{run_id} CANCELLED"
    again = cli(dev, "runs", "cancel", run_id)
    assert again.returncode != 0
    assert "already CANCELLED" in again.stderr

    replayed = cli(dev, "runs", "replay", run_id, "--from-step", "nap")
    assert replayed.returncode == 0, replayed.stderr
    replay_id = replayed.stdout.split()[0]
    details = json.loads(cli(dev, "runs", "show", replay_id, "--json").stdout)
    assert details["replay_of"] == run_id
    assert details["steps"][0]["id"] == "before"

    bulk = cli(dev, "runs", "cancel", "--function", "devtest-nap")
    assert bulk.returncode == 0, bulk.stderr
    assert "cancel: 1 run(s)" in bulk.stdout
    dev.stop()
