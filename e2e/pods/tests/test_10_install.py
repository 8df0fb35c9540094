"""`helm install` of the chart puts the operator, the gateway and the evaluation NATS and
PostgreSQL in pods on the node; `helm test` passes."""

from __future__ import annotations

from kube import Kube

from conftest import NAMESPACE, images


def test_the_release_runs_as_pods(cluster: Kube, release: str) -> None:
    pods = cluster.get("-n", NAMESPACE, "pods")["items"]
    by_component = {p["metadata"]["labels"].get("app.kubernetes.io/component"): p for p in pods}
    img = images()
    expected = {
        "operator": img["OPERATOR_IMAGE"],
        "gateway": img["GATEWAY_IMAGE"],
        "nats": img["NATS_IMAGE"],
        "postgresql": img["POSTGRES_IMAGE"],
    }
    for component, image in expected.items():
        pod = by_component.get(component)
        assert pod, f"no {component} pod: {[p['metadata']['name'] for p in pods]}"
        assert pod["spec"]["nodeName"] == "ferryman-e2e"
        assert pod["status"]["phase"] == "Running"
        [status] = pod["status"]["containerStatuses"]
        assert status["ready"], status
        assert status["restartCount"] == 0, status
        assert status["image"].endswith(image), (status["image"], image)


def helm_test(cluster: Kube, release: str) -> None:
    """`helm test` exits 0 only if its pod (curl of the gateway Service's /ready) succeeded;
    the pod is deleted then (hook-succeeded), so its events say it ran."""
    cluster.helm("test", release, "-n", NAMESPACE, "--timeout", "3m", timeout=200)
    events = cluster.get(
        "-n", NAMESPACE, "events", "--field-selector", f"involvedObject.name={release}-test-gateway"
    )["items"]
    assert any(e.get("reason") == "Started" for e in events), events


def test_helm_test_passes(cluster: Kube, release: str) -> None:
    helm_test(cluster, release)
