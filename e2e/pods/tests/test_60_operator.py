"""Deleting the operator pod: a new one takes over and still corrects drift (a JetStream
consumer deleted by hand comes back); `helm test` still passes."""

from __future__ import annotations

from jetstream import consumer_info, delete_consumer
from kube import Kube, wait_for
from test_10_install import helm_test

from conftest import NAMESPACE
from ferryman_jetstream import WORK_STREAM

FUNCTION = "e2e-pods-durable"


def operator_pods(cluster: Kube) -> list[dict]:  # type: ignore[type-arg]
    return [
        p
        for p in cluster.get("-n", NAMESPACE, "pods", "-l", "app.kubernetes.io/component=operator")[
            "items"
        ]
        if not p["metadata"].get("deletionTimestamp")
    ]


def test_a_new_operator_pod_takes_over(cluster: Kube, release: str, app: str) -> None:
    [old] = operator_pods(cluster)
    cluster.kubectl("-n", NAMESPACE, "delete", "pod", old["metadata"]["name"], "--wait=false")

    def replacement() -> dict | None:  # type: ignore[type-arg]
        pods = [
            p for p in operator_pods(cluster) if p["metadata"]["name"] != old["metadata"]["name"]
        ]
        ready = [
            p
            for p in pods
            if p["status"].get("phase") == "Running"
            and all(c.get("ready") for c in p["status"].get("containerStatuses", []))
        ]
        return ready[0] if ready else None

    wait_for("a new operator pod Running", replacement, timeout=180, interval=1)
    svc = cluster.get("-n", NAMESPACE, "service", f"{release}-nats")
    nats_url = f"nats://{svc['spec']['clusterIP']}:4222"
    wait_for(
        "the work consumer",
        lambda: consumer_info(nats_url, WORK_STREAM, f"work-{FUNCTION}"),
        timeout=60,
    )
    delete_consumer(nats_url, WORK_STREAM, f"work-{FUNCTION}")
    wait_for(
        "the new operator to recreate the deleted consumer",
        lambda: consumer_info(nats_url, WORK_STREAM, f"work-{FUNCTION}"),
        timeout=120,
        interval=1,
    )
    helm_test(cluster, release)
