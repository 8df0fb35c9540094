"""helm upgrade works; helm uninstall (after the CRs are gone) leaves nothing of ours behind."""

from __future__ import annotations

import json

from kube import REPO, Kube, wait_for

from conftest import FULLNAME, NAMESPACE, Operator, chart_values


def test_helm_upgrade(cluster: Kube, release: str, nats_url: str, operator: Operator) -> None:
    cluster.helm(
        "upgrade",
        release,
        str(REPO / "charts/ferryman"),
        "-n",
        NAMESPACE,
        *chart_values(nats_url),
        "--set",
        "gateway.replicas=2",
        "--set",
        "gateway.pdb.enabled=true",
        "--set",
        "operator.pdb.enabled=true",
        timeout=180,
    )
    status = json.loads(cluster.helm("status", release, "-n", NAMESPACE, "-o", "json").stdout)
    assert (status["info"]["status"], status["version"]) == ("deployed", 2)
    gateway = cluster.get("-n", NAMESPACE, "deployment", f"{FULLNAME}-gateway")
    assert gateway["spec"]["replicas"] == 2
    assert cluster.exists("-n", NAMESPACE, "pdb", f"{FULLNAME}-gateway")
    # the operator keeps working through the upgrade
    assert operator.proc.poll() is None


def test_uninstall_leaves_nothing_behind(cluster: Kube, release: str, operator: Operator) -> None:
    # CRs first, while the operator runs to release their finalizers.
    cluster.kubectl("-n", NAMESPACE, "delete", "dfn,workerpools", "--all", "--timeout=90s")
    wait_for(
        "worker Deployments gone",
        lambda: (
            not cluster.get(
                "-n",
                NAMESPACE,
                "deployments",
                "-l",
                "app.kubernetes.io/managed-by=ferryman-operator",
            )["items"]
        ),
        timeout=60,
    )
    cluster.helm("uninstall", release, "-n", NAMESPACE, "--wait", "--timeout=120s", timeout=180)
    kinds = (
        "deployments,replicasets,services,serviceaccounts,secrets,configmaps,roles,"
        "rolebindings,poddisruptionbudgets,statefulsets,networkpolicies"
    )
    left = cluster.get("-n", NAMESPACE, kinds, "-l", f"app.kubernetes.io/instance={release}")[
        "items"
    ]
    assert left == [], [f"{i['kind']}/{i['metadata']['name']}" for i in left]
    cluster_left = cluster.get(
        "clusterroles,clusterrolebindings,clusterkopfpeerings",
        "-l",
        f"app.kubernetes.io/instance={release}",
    )["items"]
    assert cluster_left == [], [f"{i['kind']}/{i['metadata']['name']}" for i in cluster_left]
    leftover_secrets = [
        s["metadata"]["name"]
        for s in cluster.get("-n", NAMESPACE, "secrets")["items"]
        if s["metadata"]["name"].startswith("sh.helm.")
    ]
    assert leftover_secrets == []
    # Helm keeps crds/ on uninstall by design; deleting them is the user's explicit step.
    crds = [
        "durablefunctions.ferryman.dev",
        "workerpools.ferryman.dev",
        "webhooks.ferryman.dev",
        "clusterkopfpeerings.kopf.dev",
        "kopfpeerings.kopf.dev",
    ]
    cluster.kubectl("delete", "crd", *crds, "--timeout=60s")
    assert not any(cluster.exists("crd", c) for c in crds)
