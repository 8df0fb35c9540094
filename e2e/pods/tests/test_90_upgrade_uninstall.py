"""`helm upgrade` rolls the release; `helm uninstall` (after the CRs are deleted) leaves no pod
and nothing of the release. The evaluation servers' volume claims are StatefulSet claims,
which Kubernetes keeps by design: the test deletes them and sees their volumes released."""

from __future__ import annotations

import json

from kube import REPO, Kube, wait_for

from conftest import NAMESPACE, chart_values


def test_upgrade_then_uninstall_leaves_nothing(cluster: Kube, release: str, state_dir) -> None:  # type: ignore[no-untyped-def]
    before = json.loads(cluster.helm("status", release, "-n", NAMESPACE, "-o", "json").stdout)
    values = chart_values()
    values["operator"]["scaleInterval"] = 4
    (state_dir / "values2.json").write_text(json.dumps(values))
    cluster.helm(
        "upgrade",
        release,
        str(REPO / "charts/ferryman"),
        "-n",
        NAMESPACE,
        "-f",
        str(state_dir / "values2.json"),
        "--wait",
        "--timeout",
        "5m",
        timeout=320,
    )
    status = json.loads(cluster.helm("status", release, "-n", NAMESPACE, "-o", "json").stdout)
    assert status["version"] == before["version"] + 1
    assert status["info"]["status"] == "deployed"

    cluster.kubectl(
        "-n",
        NAMESPACE,
        "delete",
        "durablefunctions,workerpools",
        "--all",
        "--timeout=120s",
        timeout=130,
    )
    cluster.helm("uninstall", release, "-n", NAMESPACE, "--wait", "--timeout", "3m", timeout=200)
    cluster.kubectl("-n", NAMESPACE, "delete", "pvc", "--all", "--timeout=120s", timeout=130)

    def empty() -> bool:
        left = cluster.kubectl(
            "-n",
            NAMESPACE,
            "get",
            "all,configmaps,secrets,serviceaccounts,roles,rolebindings,pvc,pdb",
            "-l",
            f"app.kubernetes.io/instance={release}",
            "-o",
            "name",
        ).stdout.split()
        pods = cluster.kubectl("-n", NAMESPACE, "get", "pods", "-o", "name").stdout.split()
        cluster_wide = cluster.kubectl(
            "get",
            "clusterroles,clusterrolebindings",
            "-l",
            f"app.kubernetes.io/instance={release}",
            "-o",
            "name",
        ).stdout.split()
        secrets = cluster.kubectl(
            "-n", NAMESPACE, "get", "secrets", "-l", f"owner=helm,name={release}", "-o", "name"
        ).stdout.split()
        return not (left or pods or cluster_wide or secrets)

    wait_for("nothing of the release left", empty, timeout=180, interval=2)
