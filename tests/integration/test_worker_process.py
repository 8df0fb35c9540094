"""`ferryman worker` as users start it: metrics on a port, clear errors for bad settings."""

from __future__ import annotations

import subprocess
import sys
import urllib.request

import pytest

from ferryman_worker.dev.embedded import free_port
from tests.harness import ROOT, Stack, wait_for

pytestmark = pytest.mark.integration


async def test_a_worker_serves_its_metrics_when_given_a_port(stack: Stack) -> None:
    port = free_port()
    proc = stack.spawn_worker("tests.apps.durable_app", FERRYMAN_METRICS_PORT=str(port))
    await stack.wait_worker_ready(proc)
    event = await stack.send("test.sleep", {"seconds": 0})
    await stack.wait_run(event)

    def scraped() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
        return (
            'ferryman_runs_finished_total{function="durable-sleeper",status="COMPLETED"} 1.0'
            in text
        )

    await wait_for(scraped, 10, "the finished run never showed in the worker's metrics")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"FERRYMAN_DATABASE_URL": "mysql://db/x"},
            "FERRYMAN_DATABASE_URL: Value error, must start with postgresql://",
        ),
        (
            {"FERRYMAN_NATS_URL": "http://nats:4222"},
            "FERRYMAN_NATS_URL: Value error, must start with nats://",
        ),
        (
            {"FERRYMAN_CONCURRENCY": "0"},
            "FERRYMAN_CONCURRENCY: Input should be greater than or equal to 1",
        ),
        ({"FERRYMAN_DATABASE_URL": ""}, "missing setting(s): FERRYMAN_DATABASE_URL"),
    ],
)
def test_bad_settings_stop_the_worker_with_a_message_naming_them(
    env: dict[str, str], message: str
) -> None:
    base = {
        "FERRYMAN_DATABASE_URL": "postgresql://x@127.0.0.1:1/x",
        "FERRYMAN_NATS_URL": "nats://127.0.0.1:1",
        "PATH": "/usr/bin:/bin",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "ferryman_worker.cli", "worker", "-m", "examples.bookings"],
        env={**base, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert message in proc.stderr


def test_a_module_without_an_app_is_a_clear_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ferryman_worker.cli", "worker", "-m", "examples.services"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert "defines no ferryman.Ferryman app" in proc.stderr
