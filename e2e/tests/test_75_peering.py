"""HA through kopf peering: a second operator with a higher priority takes over, the first
pauses; when the second stops, the first resumes and keeps reconciling."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from jetstream import consumer_info, delete_consumer
from kube import REPO, Kube, free_port, wait_for

from conftest import FULLNAME, NAMESPACE, Operator
from ferryman_jetstream import WORK_STREAM

VIDEO = "video-processing-process-video"


def test_peers_take_turns(
    cluster: Kube,
    operator_kube: Kube,
    operator: Operator,
    nats_url: str,
    state_dir: Path,
    applied_examples: list[str],
) -> None:
    log = state_dir / "operator-2.log"
    env = {
        **os.environ,
        "KUBECONFIG": str(operator_kube.kubeconfig),
        "FERRYMAN_NATS_URL": nats_url,
        "FERRYMAN_PEERING": FULLNAME,
        "FERRYMAN_PRIORITY": "200",
        "FERRYMAN_LIVENESS_HOST": "127.0.0.1",
        "FERRYMAN_METRICS_HOST": "127.0.0.1",
        "FERRYMAN_METRICS_PORT": str(free_port()),
        "FERRYMAN_LIVENESS_PORT": str(free_port()),
        "FERRYMAN_RECONCILE_INTERVAL": "3",
    }
    env.pop("KUBERNETES_SERVICE_HOST", None)
    before = len(operator.log_text())
    with log.open("wb") as out:
        second = subprocess.Popen(
            [sys.executable, "-m", "ferryman_operator"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    try:
        wait_for(
            "the first operator to pause for the higher priority",
            lambda: "Pausing operations in favour of" in operator.log_text()[before:],
            timeout=60,
        )
        peering = cluster.get("clusterkopfpeering", FULLNAME)
        assert len(peering.get("status", {})) >= 2, peering.get("status")
    finally:
        second.terminate()
        second.wait(30)
    wait_for(
        "the first operator to resume",
        lambda: "Resuming operations after the pause" in operator.log_text()[before:],
        timeout=90,
    )
    # and it works again: drift is corrected
    delete_consumer(nats_url, WORK_STREAM, f"work-{VIDEO}")
    wait_for(
        "the work consumer to come back",
        lambda: consumer_info(nats_url, WORK_STREAM, f"work-{VIDEO}"),
        timeout=30,
    )
    assert cluster.exists("-n", NAMESPACE, "dfn", VIDEO)
