"""When NATS goes away the functions say so (Ready=False, JetStreamError, with the error), and
they recover by themselves when it is back."""

from __future__ import annotations

from typing import Any

from kube import Kube, condition, wait_for

from conftest import NAMESPACE, Operator

VIDEO = "video-processing-process-video"


def ready(cluster: Kube) -> dict[str, Any]:
    return condition(cluster.get("-n", NAMESPACE, "dfn", VIDEO), "Ready")


def test_nats_outage_is_reported_and_recovered(
    cluster: Kube, nats_server: Any, operator: Operator, applied_examples: list[str]
) -> None:
    wait_for("Ready before the outage", lambda: ready(cluster).get("status") == "True")
    nats_server.stop()
    try:
        cond = wait_for(
            "Ready=False with reason JetStreamError",
            lambda: (c := ready(cluster)).get("reason") == "JetStreamError" and c,
            timeout=60,
        )
        assert cond["status"] == "False"
        assert "JetStream" in cond["message"]
    finally:
        nats_server.start()
    wait_for(
        "Ready again after NATS is back", lambda: ready(cluster).get("status") == "True", timeout=90
    )
    assert operator.proc.poll() is None
