"""The chart and CRDs, offline: lint, values schema, CRDs in sync, templates that fail loudly."""

from __future__ import annotations

import subprocess

import yaml
from kube import BIN, REPO

CHART = REPO / "charts/ferryman"
BASE = ["--set", "nats.url=nats://nats:4222", "--set", "database.existingSecret=db"]


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(BIN / "helm"), *args], check=False, capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_crds_in_the_chart_equal_crds_folder() -> None:
    proc = subprocess.run(
        ["bash", str(REPO / "e2e/check_crds_in_sync.sh")],
        check=False,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_helm_lint_is_clean() -> None:
    out = helm("lint", "--strict", str(CHART), *BASE).stdout
    assert "0 chart(s) failed" in out


def test_values_schema_rejects_unknown_and_mistyped_values() -> None:
    bad = helm("template", "r", str(CHART), *BASE, "--set", "operator.replcas=2", check=False)
    assert bad.returncode != 0
    assert "replcas" in bad.stderr
    bad = helm("template", "r", str(CHART), *BASE, "--set", "operator.replicas=two", check=False)
    assert "got string, want integer" in bad.stderr


def test_chart_explains_missing_nats_and_database() -> None:
    bad = helm("template", "r", str(CHART), check=False)
    assert "set nats.url" in bad.stderr or "needs a database" in bad.stderr
    bad = helm(
        "template",
        "r",
        str(CHART),
        "--set",
        "nats.bundled.enabled=true",
        "--set",
        "postgresql.bundled.enabled=true",
        "--set",
        "nats.bundled.image.tag=2.10.4",
        check=False,
    )
    assert "2.14 or newer" in bad.stderr


def test_optional_features_render_only_when_their_apis_exist() -> None:
    on = [
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "metrics.prometheusRule.enabled=true",
    ]
    without = helm("template", "r", str(CHART), *BASE, *on).stdout
    assert "kind: ServiceMonitor" not in without
    assert "kind: PrometheusRule" not in without
    with_api = helm(
        "template",
        "r",
        str(CHART),
        *BASE,
        *on,
        "--api-versions",
        "monitoring.coreos.com/v1/ServiceMonitor",
        "--api-versions",
        "monitoring.coreos.com/v1/PrometheusRule",
    ).stdout
    assert "kind: ServiceMonitor" in with_api
    assert "kind: PrometheusRule" in with_api
    default = helm("template", "r", str(CHART), *BASE).stdout
    for kind in ("PodDisruptionBudget", "StatefulSet", "ConfigMap"):
        assert f"kind: {kind}" not in default, f"{kind} should be off by default"
    # Safe to expose (docs/security.md): the gateway's NetworkPolicy is on by default.
    assert "kind: NetworkPolicy" in default


def test_default_resources_have_requests_and_limits() -> None:
    """Issue 7 overrides "no default resources": every Ferryman container is bounded."""
    default = helm("template", "r", str(CHART), *BASE).stdout
    for doc in yaml.safe_load_all(default):
        if doc and doc["kind"] in ("Deployment", "StatefulSet"):
            for container in doc["spec"]["template"]["spec"]["containers"]:
                resources = container["resources"]
                assert resources["requests"], doc["metadata"]["name"]
                assert resources["limits"], doc["metadata"]["name"]
