"""Kubernetes API calls the operator makes itself (kopf makes the others): the pool Deployments."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

TEMPLATE_HASH = "ferryman.dev/template-hash"


async def api_client() -> client.ApiClient:
    """In a pod, the pod's ServiceAccount; elsewhere, KUBECONFIG (as kopf logs in)."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    else:
        await config.load_kube_config()
    return client.ApiClient()


def template_hash(deployment: dict[str, Any]) -> str:
    body = {k: v for k, v in deployment["spec"].items() if k != "replicas"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


async def read_replicas(api: client.ApiClient, namespace: str, name: str) -> int | None:
    """The Deployment's spec.replicas, or None when it does not exist."""
    apps = client.AppsV1Api(api)
    try:
        found = await apps.read_namespaced_deployment(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return int(found.spec.replicas or 0)


async def apply_deployment(api: client.ApiClient, deployment: dict[str, Any]) -> str:
    """Create the Deployment, or bring it to ``deployment``; return what was done."""
    apps = client.AppsV1Api(api)
    meta = deployment["metadata"]
    meta.setdefault("annotations", {})[TEMPLATE_HASH] = template_hash(deployment)
    name, namespace = meta["name"], meta["namespace"]
    try:
        found = await apps.read_namespaced_deployment(name, namespace)
    except ApiException as error:
        if error.status != 404:
            raise
        await apps.create_namespaced_deployment(namespace, deployment)  # type: ignore[arg-type]
        return "created"
    annotations = found.metadata.annotations or {}
    if annotations.get(TEMPLATE_HASH) != meta["annotations"][TEMPLATE_HASH]:
        meta["resourceVersion"] = found.metadata.resource_version
        await apps.replace_namespaced_deployment(name, namespace, deployment)  # type: ignore[arg-type]
        return "updated"
    if int(found.spec.replicas or 0) != int(deployment["spec"]["replicas"]):
        await apps.patch_namespaced_deployment(
            name, namespace, {"spec": {"replicas": deployment["spec"]["replicas"]}}
        )
        return "scaled"
    return "unchanged"
