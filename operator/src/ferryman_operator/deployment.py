"""The Deployment a WorkerPool owns (a pure function of the pool and the operator settings)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ferryman_operator.settings import OperatorSettings

DEFAULT_GRACE_SECONDS = 300
POOL_LABEL = "ferryman.dev/worker-pool"


def deployment_name(pool_name: str) -> str:
    return f"{pool_name}-workers"


def pod_labels(pool_name: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "ferryman-worker",
        "app.kubernetes.io/component": "worker",
        "app.kubernetes.io/managed-by": "ferryman-operator",
        POOL_LABEL: pool_name,
    }


def build(
    pool: Mapping[str, Any],
    settings: OperatorSettings,
    replicas: int,
) -> dict[str, Any]:
    meta, spec = pool["metadata"], pool["spec"]
    name = str(meta["name"])
    labels = pod_labels(name)
    env: list[dict[str, Any]] = [
        {"name": "FERRYMAN_NATS_URL", "value": settings.workers_nats_url},
        {"name": "FERRYMAN_WORKER_POOL", "value": name},
        {"name": "FERRYMAN_MODULE", "value": str(spec["module"])},
        # The operator owns consumers and schedules in a cluster; workers only use them.
        {"name": "FERRYMAN_MANAGE_TOPOLOGY", "value": "false"},
        {"name": "FERRYMAN_METRICS_PORT", "value": "9090"},
    ]
    grace = int(spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS))
    # A stopping worker lets running steps finish until just before the kubelet's SIGKILL.
    env.append({"name": "FERRYMAN_SHUTDOWN_GRACE", "value": str(max(grace - 5, 0))})
    env += [dict(e) for e in spec.get("env") or []]
    env_from = [dict(e) for e in spec.get("envFrom") or []]
    if settings.worker_env_secret:
        env_from.insert(0, {"secretRef": {"name": settings.worker_env_secret, "optional": True}})
    container: dict[str, Any] = {
        "name": "worker",
        "image": str(spec["image"]),
        "args": ["worker", "-m", str(spec["module"])],
        "env": env,
        "ports": [{"name": "metrics", "containerPort": 9090}],
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if env_from:
        container["envFrom"] = env_from
    if spec.get("imagePullPolicy"):
        container["imagePullPolicy"] = spec["imagePullPolicy"]
    if spec.get("resources"):
        container["resources"] = dict(spec["resources"])
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "terminationGracePeriodSeconds": grace,
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    account = spec.get("serviceAccountName") or settings.worker_service_account
    if account:
        pod_spec["serviceAccountName"] = account
    for key in ("imagePullSecrets", "nodeSelector", "tolerations"):
        if spec.get(key):
            pod_spec[key] = spec[key]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(name),
            "namespace": meta["namespace"],
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": "ferryman.dev/v1alpha1",
                    "kind": "WorkerPool",
                    "name": name,
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {POOL_LABEL: name}},
            "strategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {
                    "labels": {**labels, **(spec.get("podLabels") or {})},
                    "annotations": dict(spec.get("podAnnotations") or {}),
                },
                "spec": pod_spec,
            },
        },
    }
