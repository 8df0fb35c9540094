"""Fixtures of the real-pods suite: the cluster run.sh brought up, the chart installed in it,
the e2e app's WorkerPool and functions, and HTTP to the gateway's Service."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests"))  # kube.py, shared with e2e/tests

from kube import REPO, Kube, wait_for  # noqa: E402

NAMESPACE = "ferryman"
RELEASE = "ferryman"
APP_POOL = "e2e-pods"
# The gateway's bootstrap credentials (FERRYMAN_EVENT_KEY, FERRYMAN_API_TOKEN): the chart
# generates them into this Secret; the `release` fixture reads them.
AUTH_SECRET = f"{RELEASE}-gateway-auth"
CREDENTIALS: dict[str, str] = {}


def images() -> dict[str, str]:
    """The image names of images.env (KEY=value lines, ${TAG} expanded)."""
    tag = os.environ.get("FERRYMAN_IMAGE_TAG", "e2e")
    out = {}
    for line in (HERE.parent / "images.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out[key] = value.replace("${FERRYMAN_IMAGE_TAG:-e2e}", tag).replace("$TAG", tag)
    return out


def split(image: str) -> dict[str, str]:
    repository, tag = image.rsplit(":", 1)
    return {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"}


def chart_values() -> dict[str, Any]:
    img = images()
    return {
        "operator": {
            "image": split(img["OPERATOR_IMAGE"]),
            "scaleInterval": 3,
            "reconcileInterval": 10,
        },
        "gateway": {"image": split(img["GATEWAY_IMAGE"])},
        "nats": {"bundled": {"enabled": True, "image": split(img["NATS_IMAGE"]), "storage": "1Gi"}},
        "postgresql": {
            "bundled": {"enabled": True, "image": split(img["POSTGRES_IMAGE"]), "storage": "1Gi"}
        },
        "tests": {"image": split(img["CURL_IMAGE"])},
    }


def http(method: str, url: str, body: Any = None, timeout: float = 10) -> Any:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if "FERRYMAN_API_TOKEN" in CREDENTIALS:
        headers["Authorization"] = f"Bearer {CREDENTIALS['FERRYMAN_API_TOKEN']}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


@pytest.fixture(scope="session")
def state_dir() -> Path:
    return Path(os.environ["FERRYMAN_E2E_STATE"])


@pytest.fixture(scope="session")
def cluster() -> Kube:
    return Kube(Path(os.environ["KUBECONFIG"]))


@pytest.fixture(scope="session")
def release(cluster: Kube, state_dir: Path) -> str:
    """The chart, installed with its evaluation NATS and PostgreSQL, every pod Ready."""
    values = state_dir / "values.json"
    values.write_text(json.dumps(chart_values()))
    cluster.helm(
        # install (an upgrade when a kept cluster has it: KEEP=1 reruns)
        "upgrade",
        "--install",
        RELEASE,
        str(REPO / "charts/ferryman"),
        "-n",
        NAMESPACE,
        "--create-namespace",
        "-f",
        str(values),
        "--wait",
        "--timeout",
        "6m",
        timeout=420,
    )
    import base64

    data = cluster.get("-n", NAMESPACE, "secret", AUTH_SECRET)["data"]
    for key in ("FERRYMAN_EVENT_KEY", "FERRYMAN_API_TOKEN"):
        CREDENTIALS[key] = base64.b64decode(data[key]).decode()
    return RELEASE


@pytest.fixture(scope="session")
def gateway(cluster: Kube, release: str) -> str:
    """The gateway Service's URL (its ClusterIP, routed by kube-proxy on this host)."""
    svc = cluster.get("-n", NAMESPACE, "service", f"{release}-gateway")
    url = f"http://{svc['spec']['clusterIP']}:{svc['spec']['ports'][0]['port']}"

    def ready() -> bool:
        try:
            http("GET", f"{url}/ready")
            return True
        except OSError:
            return False

    wait_for("the gateway Service to answer /ready", ready, timeout=60)
    return url


def pool_manifest(image: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "ferryman.dev/v1alpha1",
        "kind": "WorkerPool",
        "metadata": {"name": APP_POOL, "namespace": NAMESPACE},
        "spec": {
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "module": "e2eapp",
            "autoscaling": {
                "min": 0,
                "max": 3,
                "targetBacklogPerReplica": 2,
                "scaleDownDelay": "5s",
            },
            "terminationGracePeriodSeconds": 120,
            **spec,
        },
    }


@pytest.fixture(scope="session")
def app(cluster: Kube, release: str) -> Iterator[str]:
    """The e2e app's WorkerPool (scales 0..3 on backlog) and its DurableFunctions, Ready."""
    docs = [pool_manifest(images()["APP_IMAGE"])]
    for name in ("durable", "sleeper"):
        docs.append(
            {
                "apiVersion": "ferryman.dev/v1alpha1",
                "kind": "DurableFunction",
                "metadata": {"name": f"e2e-pods-{name}", "namespace": NAMESPACE},
                "spec": {
                    "app": "e2e-pods",
                    "code": {"module": "e2eapp", "function": name},
                    "workerPool": APP_POOL,
                    "triggers": [{"event": f"e2e.{'durable' if name == 'durable' else 'sleep'}"}],
                    "retries": 4,
                    # a killed worker's job comes back after 10 s
                    "delivery": {"ackWait": "10s"},
                },
            }
        )
    cluster.kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})
    )
    for name in ("durable", "sleeper"):
        cluster.kubectl(
            "-n",
            NAMESPACE,
            "wait",
            "--for=condition=Ready",
            f"dfn/e2e-pods-{name}",
            "--timeout=120s",
            timeout=130,
        )
    return APP_POOL


@pytest.fixture(scope="session")
def database_url(cluster: Kube, release: str) -> str:
    """The bundled PostgreSQL, through its Service, with the chart's generated password."""
    import base64

    secret = cluster.get("-n", NAMESPACE, "secret", f"{release}-database")
    password = base64.b64decode(secret["data"]["POSTGRES_PASSWORD"]).decode()
    svc = cluster.get("-n", NAMESPACE, "service", f"{release}-postgresql")
    return f"postgresql://ferryman:{password}@{svc['spec']['clusterIP']}:5432/ferryman"


class Ledger:
    """The e2e app's record of every step execution (run, step, pod)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def rows(self, run_id: str) -> list[tuple[str, str]]:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            exists = conn.execute("SELECT to_regclass('e2e_ledger') IS NOT NULL").fetchone()
            if not exists or not exists[0]:
                return []
            return [
                (str(step), str(pod))
                for step, pod in conn.execute(
                    "SELECT step, pod FROM e2e_ledger WHERE run_id = %s ORDER BY at", (run_id,)
                )
            ]

    def count(self, run_id: str, step: str) -> int:
        return sum(1 for s, _ in self.rows(run_id) if s == step)

    def pods(self, run_id: str, step: str) -> list[str]:
        return [p for s, p in self.rows(run_id) if s == step]


@pytest.fixture(scope="session")
def ledger(database_url: str) -> Ledger:
    return Ledger(database_url)


def send(gateway: str, name: str, data: dict[str, Any]) -> str:
    """Send one event through the gateway Service; its id."""
    sent = http(
        "POST", f"{gateway}/e/{CREDENTIALS['FERRYMAN_EVENT_KEY']}", {"name": name, "data": data}
    )
    assert sent["status"] == 200, sent
    [event_id] = sent["ids"]
    return str(event_id)


def run_of(gateway: str, event_id: str, timeout: float = 60) -> dict[str, Any]:
    """The run an event started (waits for it to exist)."""

    def started() -> dict[str, Any] | None:
        runs = http("GET", f"{gateway}/v1/events/{event_id}/runs")["data"]
        return runs[0] if runs else None

    return wait_for(f"a run of event {event_id}", started, timeout=timeout, interval=1)


def completed(gateway: str, run_id: str, timeout: float = 240) -> dict[str, Any]:
    """Wait for a run to be COMPLETED (fails at once if it FAILED); its detail."""

    def done() -> dict[str, Any] | None:
        detail = http("GET", f"{gateway}/v1/runs/{run_id}")["data"]
        if detail["status"] in (
            "FAILED",
            "CANCELLED",
        ):  # not an AssertionError: wait_for retries those
            raise RuntimeError(f"run {run_id} ended {detail['status']}: {detail}")
        return detail if detail["status"] == "COMPLETED" else None

    return wait_for(f"run {run_id} to complete", done, timeout=timeout, interval=1)


def pool_pods(cluster: Kube, pool: str) -> list[dict[str, Any]]:
    return list(
        cluster.get("-n", NAMESPACE, "pods", "-l", f"ferryman.dev/worker-pool={pool}")["items"]
    )
