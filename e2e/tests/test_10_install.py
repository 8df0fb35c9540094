"""helm install on the real API server; the chart's RBAC is least privilege; kubeconform."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from kube import BIN, REPO, Kube, wait_for
from schemas import write_schemas

from conftest import FULLNAME, NAMESPACE, chart_values


def test_helm_install_creates_the_release(cluster: Kube, release: str) -> None:
    status = json.loads(cluster.helm("status", release, "-n", NAMESPACE, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    for crd in (
        "durablefunctions.ferryman.dev",
        "workerpools.ferryman.dev",
        "webhooks.ferryman.dev",
        "clusterkopfpeerings.kopf.dev",
    ):
        obj = cluster.get("crd", crd)
        established = [c for c in obj["status"]["conditions"] if c["type"] == "Established"]
        assert established, crd
        assert established[0]["status"] == "True", crd
    for kind, name in [
        ("deployment", f"{FULLNAME}-operator"),
        ("deployment", f"{FULLNAME}-gateway"),
        ("service", f"{FULLNAME}-gateway"),
        ("serviceaccount", f"{FULLNAME}-operator"),
        ("serviceaccount", f"{FULLNAME}-gateway"),
        ("serviceaccount", f"{FULLNAME}-worker"),
    ]:
        assert cluster.exists("-n", NAMESPACE, kind, name), f"{kind}/{name}"
    assert cluster.exists("clusterkopfpeering", FULLNAME)
    # The controller-manager runs: the chart's Deployments get ReplicaSets (pods stay Pending).
    wait_for(
        "a ReplicaSet of the operator Deployment",
        lambda: cluster.get(
            "-n", NAMESPACE, "replicasets", "-l", "app.kubernetes.io/component=operator"
        )["items"],
    )


def test_printer_columns_and_short_name(cluster: Kube, release: str) -> None:
    out = (
        cluster.kubectl("-n", NAMESPACE, "get", "dfn").stdout
        + cluster.kubectl("-n", NAMESPACE, "get", "dfn").stderr
    )
    assert "No resources found" in out


def can(cluster: Kube, account: str, verb: str, resource: str, *extra: str) -> bool:
    proc = cluster.kubectl(
        "auth",
        "can-i",
        verb,
        resource,
        f"--as=system:serviceaccount:{NAMESPACE}:{account}",
        *extra,
        check=False,
    )
    return proc.stdout.strip() == "yes"


def test_rbac_is_least_privilege(cluster: Kube, release: str) -> None:
    op, gw, wk = f"{FULLNAME}-operator", f"{FULLNAME}-gateway", f"{FULLNAME}-worker"
    # what the operator needs, cluster-wide
    for verb, res in [
        ("watch", "durablefunctions.ferryman.dev"),
        ("patch", "durablefunctions.ferryman.dev/status"),
        ("patch", "workerpools.ferryman.dev/status"),
        ("create", "deployments.apps"),
        ("patch", "deployments.apps"),
        ("create", "events"),
    ]:
        assert can(cluster, op, verb, res, "-A"), f"operator cannot {verb} {res}"
    assert can(cluster, op, "patch", f"clusterkopfpeerings.kopf.dev/{FULLNAME}")
    # and nothing more
    for verb, res in [
        ("get", "secrets"),
        ("delete", "deployments.apps"),
        ("create", "durablefunctions.ferryman.dev"),
        ("delete", "durablefunctions.ferryman.dev"),
        ("create", "pods"),
        ("list", "customresourcedefinitions.apiextensions.k8s.io"),
        ("patch", "clusterkopfpeerings.kopf.dev/someone-else"),
    ]:
        assert not can(cluster, op, verb, res, "-A"), f"operator may {verb} {res}"
    # the gateway has no API rights; workers only read Ferryman CRs in the release namespace
    for verb, res in [
        ("get", "durablefunctions.ferryman.dev"),
        ("list", "pods"),
        ("get", "secrets"),
    ]:
        assert not can(cluster, gw, verb, res, "-n", NAMESPACE), f"gateway may {verb} {res}"
    assert can(cluster, wk, "list", "durablefunctions.ferryman.dev", "-n", NAMESPACE)
    assert not can(cluster, wk, "patch", "durablefunctions.ferryman.dev", "-n", NAMESPACE)
    assert not can(cluster, wk, "list", "durablefunctions.ferryman.dev", "-n", "default")
    assert not can(cluster, wk, "get", "secrets", "-n", NAMESPACE)


def test_kubeconform_validates_the_rendered_chart(
    cluster: Kube, release: str, nats_url: str, state_dir: Path
) -> None:
    """Schemas come from this API server's OpenAPI (CRDs included, so our CRs are checked too);
    no -ignore-missing-schemas: every kind must have a schema."""
    schemas = state_dir / "schemas"
    openapi = json.loads(cluster.kubectl("get", "--raw", "/openapi/v2").stdout)
    assert write_schemas(openapi, schemas) > 100
    rendered = state_dir / "rendered.yaml"
    variants = [
        chart_values(nats_url),
        [
            "--set",
            "nats.bundled.enabled=true",
            "--set",
            "postgresql.bundled.enabled=true",
            "--set",
            "networkPolicy.enabled=true",
            "--set",
            "operator.pdb.enabled=true",
            "--set",
            "gateway.pdb.enabled=true",
            "--set",
            "metrics.grafanaDashboard.enabled=true",
            "--set",
            "operator.replicas=2",
            "--set",
            "operator.watchNamespaces={apps,jobs}",
        ],
    ]
    for values in variants:
        out = cluster.helm(
            "template",
            "r",
            str(REPO / "charts/ferryman"),
            "-n",
            NAMESPACE,
            "--include-crds",
            *values,
        ).stdout
        rendered.write_text(out)
        proc = subprocess.run(
            [
                str(BIN / "kubeconform"),
                "-strict",
                "-summary",
                "-output",
                "text",
                "-schema-location",
                str(schemas / "{{ .ResourceKind }}{{ .KindSuffix }}.json"),
                str(rendered),
                *map(str, sorted((REPO / "examples/k8s").glob("*.yaml"))),
            ],
            check=False,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "Invalid: 0, Errors: 0, Skipped: 0" in proc.stdout, proc.stdout
