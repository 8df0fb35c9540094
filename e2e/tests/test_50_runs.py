"""Functions run through the cluster: the gateway and a worker run as local processes with the
chart's gateway and worker ServiceAccounts, on the consumers the operator made; an event sent
to the gateway starts a run that completes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kube import REPO, Kube, free_port, wait_for

from conftest import FULLNAME, NAMESPACE, Operator, service_account_kubeconfig

VIDEO = "video-processing-process-video"


@pytest.fixture(scope="module")
def database_url(state_dir: Path) -> Iterator[str]:
    from ferryman_worker.dev.embedded import PostgresServer

    try:
        server = PostgresServer(state_dir / "postgres")
    except RuntimeError as error:  # no PostgreSQL binaries on this machine
        pytest.skip(str(error))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


API_TOKEN = "e2e-operate-token"


def http(method: str, url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url,
        data=data,
        method=method,
        # The gateway runs with auth on, as in the chart.
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {API_TOKEN}"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


class Proc:
    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.log = name, log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ferryman_worker.cli", *args],
                env=env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def alive(self) -> bool:
        assert self.proc.poll() is None, f"{self.name} exited:\n{self.log.read_text()[-3000:]}"
        return True

    def stop(self) -> None:
        for sig, wait in ((signal.SIGINT, 10), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            if self.proc.poll() is not None:
                return
            self.proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(wait)


@pytest.fixture(scope="module")
def engine(
    cluster: Kube,
    operator: Operator,
    nats_url: str,
    database_url: str,
    state_dir: Path,
    applied_examples: list[str],
) -> Iterator[str]:
    """A worker for examples.video_processing and the gateway, as the chart would run them."""
    base = {**os.environ, "FERRYMAN_NATS_URL": nats_url, "FERRYMAN_DATABASE_URL": database_url}
    base.pop("KUBERNETES_SERVICE_HOST", None)
    worker_env = {
        **base,
        "KUBECONFIG": str(
            service_account_kubeconfig(
                cluster, f"{FULLNAME}-worker", state_dir / "worker.kubeconfig"
            )
        ),
        # as the operator's Deployment sets it: the operator owns consumers and schedules
        "FERRYMAN_MANAGE_TOPOLOGY": "false",
        "FERRYMAN_WORKER_POOL": "video-processing",
        "FERRYMAN_NAMESPACE": NAMESPACE,
    }
    worker = Proc(
        "worker",
        ["worker", "-m", "examples.video_processing"],
        worker_env,
        state_dir / "worker.log",
    )
    port = free_port()
    gateway_env = {
        **base,
        "FERRYMAN_EVENT_KEY": "e2e-key",
        "FERRYMAN_API_TOKEN": API_TOKEN,
        "KUBECONFIG": str(
            service_account_kubeconfig(
                cluster, f"{FULLNAME}-gateway", state_dir / "gateway.kubeconfig"
            )
        ),
    }
    gateway = None
    try:
        wait_for(
            "the worker to host its functions",
            lambda: worker.alive() and ("hosting" in worker.log.read_text(errors="replace")),
            timeout=90,
        )
        gateway = Proc(
            "gateway",
            ["gateway", "--host", "127.0.0.1", "--port", str(port)],
            gateway_env,
            state_dir / "gateway.log",
        )
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            gateway.alive()
            try:
                http("GET", f"{url}/ready")
                return True
            except OSError:
                return False

        wait_for("the gateway /ready", ready, timeout=60)
        yield url
    finally:
        if gateway:
            gateway.stop()
        worker.stop()


def test_an_event_runs_the_function_to_completion(cluster: Kube, engine: str) -> None:
    sent = http(
        "POST",
        f"{engine}/e/e2e-key",
        {"name": "video.uploaded", "data": {"videoId": "v-e2e", "url": "s3://videos/v-e2e.mp4"}},
    )
    assert sent["status"] == 200
    [event_id] = sent["ids"]

    def completed() -> dict[str, Any] | None:
        runs = http("GET", f"{engine}/v1/events/{event_id}/runs")["data"]
        done = [r for r in runs if r["status"] == "COMPLETED"]
        return done[0] if done else None

    run = wait_for("the run to complete", completed, timeout=90, interval=1)
    assert run["function_id"] == VIDEO
    detail = http("GET", f"{engine}/v1/runs/{run['run_id']}")["data"]
    assert [s["id"] for s in detail["steps"]] == ["transcribe", "summarize", "write-to-db"]
    assert detail["output"]["videoId"] == "v-e2e"
    # The function's status in the cluster stays healthy and its backlog drains.
    wait_for(
        "backlog 0 and Ready",
        lambda: (
            (o := cluster.get("-n", NAMESPACE, "dfn", VIDEO))["status"].get("backlog") == 0 and o
        ),
        timeout=30,
    )


def test_the_worker_checked_the_cluster_resources_against_its_code(
    engine: str, state_dir: Path
) -> None:
    log = (state_dir / "worker.log").read_text(errors="replace")
    assert "match the code" in log, log[-2000:]
    assert "disagrees with the code" not in log
    assert "could not read DurableFunctions" not in log
