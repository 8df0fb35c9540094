"""A worker in a WorkerPool warns when a DurableFunction and the code disagree.

The operator builds consumers and schedules from the CR; the worker runs the code. When
they differ (a trigger added in code but not in the CR, retries changed in one place),
events can go unconsumed or behave unlike the code says, so the worker says so at
start-up, naming the function and the field, and how to regenerate the CR.
"""

from __future__ import annotations

import logging
import os
import types
from pathlib import Path
from typing import Any

from ferryman import Ferryman
from ferryman_worker.kube.manifests import code_name, function_spec

log = logging.getLogger("ferryman.drift")

COMPARED = (
    "triggers", "retries", "concurrency", "throttle", "rateLimit", "debounce", "batchEvents",
    "priority", "idempotency", "singleton", "timeouts", "cancelOn",
)  # fmt: skip
SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def differences(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """The fields where the CR's spec (``actual``) differs from the code's (``expected``)."""
    found = []
    for field in COMPARED:
        want, have = expected.get(field), actual.get(field)
        if field == "retries":
            want = 4 if want is None else want
            have = 4 if have is None else have
        if (want or None) != (have or None):
            found.append(f"{field}: code has {want!r}, the DurableFunction has {have!r}")
    return found


def compare(
    apps: list[Ferryman], module: types.ModuleType, pool: str, resources: list[dict[str, Any]]
) -> list[str]:
    """Warnings for every disagreement between the functions in code and the CRs."""
    by_id: dict[str, dict[str, Any]] = {}
    for cr in resources:
        spec = cr.get("spec", {})
        by_id[spec.get("functionId") or cr["metadata"]["name"]] = cr
    warnings = []
    hosted = set()
    for app in apps:
        owners = {f.config.id: f for f in app.functions.values()}
        for fn in app.functions.values():
            hosted.add(fn.id)
            found = by_id.get(fn.id)
            hint = f"regenerate it with `ferryman manifests -m {module.__name__}`"
            if found is None:
                warnings.append(
                    f"function {fn.id} has no DurableFunction, so nothing consumes "
                    f"its triggers; {hint}"
                )
                continue
            cr = found
            expected = function_spec(fn, module.__name__, code_name(fn, module, owners), pool)
            for diff in differences(expected, cr.get("spec", {})):
                warnings.append(
                    f"DurableFunction {cr['metadata']['name']} disagrees with the "
                    f"code: {diff}; {hint}"
                )
    for function_id, cr in by_id.items():
        if cr.get("spec", {}).get("workerPool") == pool and function_id not in hosted:
            warnings.append(
                f"DurableFunction {cr['metadata']['name']} names pool {pool} but "
                f"module {module.__name__} has no function {function_id}"
            )
    return warnings


async def fetch_functions(namespace: str | None) -> tuple[str, list[dict[str, Any]]]:
    """The DurableFunctions of this worker's namespace (in-cluster or ``KUBECONFIG``)."""
    from kubernetes_asyncio import client, config

    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        default_ns = SA_NAMESPACE.read_text()  # noqa: ASYNC240 - a tiny file, once
    else:
        await config.load_kube_config()
        _, context = config.list_kube_config_contexts()
        default_ns = ((context or {}).get("context") or {}).get("namespace", "default")
    namespace = namespace or default_ns.strip()
    async with client.ApiClient() as api:
        listing = await client.CustomObjectsApi(api).list_namespaced_custom_object(
            "ferryman.dev", "v1alpha1", namespace, "durablefunctions"
        )
    return namespace, list(listing.get("items", []))


async def warn_on_drift(apps: list[Ferryman], module: types.ModuleType) -> list[str]:
    """Run the check when this worker belongs to a WorkerPool; log and return warnings."""
    pool = os.environ.get("FERRYMAN_WORKER_POOL")
    if not pool:
        return []
    try:
        namespace, resources = await fetch_functions(os.environ.get("FERRYMAN_NAMESPACE"))
    except Exception as exc:
        log.warning("could not read DurableFunctions to compare with the code: %s", exc)
        return []
    warnings = compare(apps, module, pool, resources)
    for warning in warnings:
        log.warning(warning)
    if not warnings:
        log.info("the %d DurableFunction(s) in %s match the code", len(resources), namespace)
    return warnings
