"""`ferryman dev` heals and cleans up after itself, tried the way a user breaks it:
kill -9 the parent alone, start a second copy by mistake, kill its worker, NATS and
PostgreSQL, start it on a port that is taken."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ferryman_worker.dev.embedded import free_port
from tests.integration.test_dev import Dev, alive, descendants, dev, leftovers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]  # starts dev several times
__all__ = ["dev"]  # the fixture, shared with test_dev.py


def ready(d: Dev) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{d.port}/ready", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def wait_until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def child(d: Dev, word: str) -> int:
    """The pid of dev's child whose command line contains ``word``."""
    assert d.proc is not None
    for pid in descendants(d.proc.pid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if word in cmd:
            return pid
    raise AssertionError(f"no child running {word!r}")


def test_kill_9_of_the_parent_alone_leaves_nothing_and_the_next_start_works(dev: Dev) -> None:
    dev.start()
    assert dev.proc is not None
    below = descendants(dev.proc.pid)
    assert len(below) >= 3, "worker, NATS, PostgreSQL (and its backends)"
    os.kill(dev.proc.pid, signal.SIGKILL)  # the parent only, not its group
    dev.proc.wait()
    wait_until(lambda: not alive(below), 20, f"orphans left running: {alive(below)}")
    assert leftovers(dev.root) == []

    dev.start()  # same folder: must start cleanly, with its data
    [event_id] = dev.api("/e/dev", {"name": "dev.nap", "data": {"seconds": 0}})["ids"]
    assert dev.wait_status(event_id, "COMPLETED")["output"] == "v1"
    dev.stop()


def test_a_second_copy_on_the_same_folder_is_refused_and_the_first_keeps_working(
    dev: Dev,
) -> None:
    dev.start()
    assert dev.proc is not None
    second = subprocess.run(
        [sys.executable, "-m", "ferryman_worker.cli", "dev", "-m", "devapp", "--port",
         str(free_port())],
        cwd=dev.root, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert second.returncode == 1
    assert f"pid {dev.proc.pid}" in second.stderr
    assert f"port {dev.port}" in second.stderr
    assert "Traceback" not in second.stderr + second.stdout
    assert ready(dev)[0] == 200
    [event_id] = dev.api("/e/dev", {"name": "dev.nap", "data": {"seconds": 0}})["ids"]
    dev.wait_status(event_id, "COMPLETED")
    dev.stop()


def test_a_killed_worker_nats_and_postgres_are_restarted(dev: Dev) -> None:
    dev.start()
    os.kill(child(dev, "ferryman_worker.cli worker"), signal.SIGKILL)
    wait_until(lambda: ready(dev)[0] == 503, 1, "not ready while the worker is down")
    assert "worker" in ready(dev)[1]
    dev.wait_log("worker was killed by signal 9; restarting it in 1s")
    dev.wait_log("hosting 1 functions", count=2)
    wait_until(lambda: ready(dev)[0] == 200, 30, "ready again after the worker restarted")

    os.kill(child(dev, "nats-server"), signal.SIGKILL)
    dev.wait_log("NATS was killed by signal 9; restarting it")
    os.kill(child(dev, "postgres -D"), signal.SIGKILL)
    dev.wait_log("PostgreSQL was killed by signal 9; restarting it")
    dev.wait_log("PostgreSQL is running again")
    wait_until(lambda: ready(dev)[0] == 200, 60, f"never ready again: {ready(dev)}")
    [event_id] = dev.api("/e/dev", {"name": "dev.nap", "data": {"seconds": 1}})["ids"]
    assert dev.wait_status(event_id, "COMPLETED")["output"] == "v1"
    dev.stop()
    assert leftovers(dev.root) == []


def test_a_taken_port_is_named_with_a_way_out_and_nothing_starts(tmp_path: Path) -> None:
    (tmp_path / "devapp.py").write_text("import ferryman\nfm = ferryman.Ferryman(app_id='x')\n"
                                        "@fm.function(id='f', trigger=ferryman.on_event('a'))\n"
                                        "async def f(ctx): return 1\n")  # fmt: skip
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "ferryman_worker.cli", "dev", "-m", "devapp", "--port",
             str(port)],
            cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert result.returncode == 1
    assert f"port {port} is already in use" in result.stderr
    assert f"--port {port + 1}" in result.stderr
    assert "gateway on" not in result.stdout
    assert "Traceback" not in result.stderr
    assert leftovers(tmp_path) == []
