"""kopf handlers for WorkerPool: own the Deployment and size it on the functions' backlog."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import kopf

import ferryman_jetstream
from ferryman_operator import conditions as cond
from ferryman_operator import deployment as dep
from ferryman_operator import kube, metrics
from ferryman_operator.scaling import Decision, ScalePolicy, decide, fixed_replicas
from ferryman_operator.settings import OperatorSettings

RESOURCE = ("ferryman.dev", "v1alpha1", "workerpools")


def _parse_time(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def _format_time(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def size_pool(
    *,
    name: str,
    namespace: str,
    spec: Any,
    body: Any,
    status: Any,
    patch: kopf.Patch,
    memo: Any,
    functions: list[str],
) -> None:
    """Decide the replicas from the backlog, apply the Deployment, report status."""
    generation = body.get("metadata", {}).get("generation")
    deploy_name = dep.deployment_name(name)
    current = await kube.read_replicas(memo.api, namespace, deploy_name)
    policy = ScalePolicy.from_spec(spec)
    pending = in_flight = 0
    nats_error = ""
    for function_id in functions:
        try:
            counts = await ferryman_jetstream.backlog_counts(memo.js, function_id)
        except Exception as error:
            nats_error = f"cannot read the backlog from JetStream: {error!r}"
            break
        pending += counts.pending
        in_flight += counts.in_flight

    if policy is None:
        decision = Decision(fixed_replicas(spec), None, "FixedSize")
    elif nats_error:
        decision = Decision(current if current is not None else policy.min, None, "BacklogUnknown")
    elif current is None:
        decision = decide(
            policy,
            pending=pending,
            in_flight=in_flight,
            current=policy.min,
            low_since=None,
            now=time.time(),
        )
    else:
        decision = decide(
            policy,
            pending=pending,
            in_flight=in_flight,
            current=current,
            low_since=_parse_time(status.get("lowSince")),
            now=time.time(),
        )

    metrics.SCALING_DECISIONS.labels(name, decision.reason).inc()
    metrics.POOL_REPLICAS.labels(name).set(decision.replicas)
    if not nats_error:
        metrics.POOL_BACKLOG.labels(name).set(pending + in_flight)
    body_dep = dep.build(body, memo.settings, decision.replicas)
    try:
        action = await kube.apply_deployment(memo.api, body_dep)
    except Exception as error:
        message = f"cannot write Deployment {deploy_name}: {error}"
        patch.status["conditions"] = cond.merge(
            status.get("conditions"),
            [cond.Condition("Ready", False, "DeploymentError", message)],
            generation,
        )
        raise kopf.TemporaryError(message, delay=10) from error

    if action == "created":
        kopf.info(body, reason="DeploymentCreated", message=f"created Deployment {deploy_name}")
    elif action == "updated":
        kopf.info(body, reason="DeploymentUpdated", message=f"updated Deployment {deploy_name}")
    elif action == "scaled":
        kopf.info(
            body,
            reason=decision.reason,
            message=f"scaled {deploy_name} from {current} to {decision.replicas} "
            f"(pending {pending}, in flight {in_flight})",
        )
        patch.status["lastScaleTime"] = cond.now()

    if nats_error:
        ready = cond.Condition("Ready", False, "BacklogUnknown", nats_error)
    else:
        ready = cond.Condition(
            "Ready",
            True,
            decision.reason,
            f"{decision.replicas} replica(s) for backlog {pending + in_flight} "
            f"({in_flight} in flight) over {len(functions)} function(s)",
        )
    patch.status["conditions"] = cond.merge(status.get("conditions"), [ready], generation)
    patch.status["deployment"] = deploy_name
    patch.status["replicas"] = current if current is not None else 0
    patch.status["desiredReplicas"] = decision.replicas
    patch.status["backlog"] = pending + in_flight
    patch.status["inFlight"] = in_flight
    patch.status["functions"] = sorted(functions)
    patch.status["functionCount"] = len(functions)
    patch.status["lowSince"] = _format_time(decision.low_since)
    patch.status["observedGeneration"] = generation


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    @kopf.on.resume(*RESOURCE, registry=registry, id="deployment", backoff=10)
    @kopf.on.create(*RESOURCE, registry=registry, id="deployment", backoff=10)
    @kopf.on.update(*RESOURCE, registry=registry, id="deployment", backoff=10, field="spec")
    async def pool_changed(**kwargs: Any) -> None:
        with metrics.reconciling("WorkerPool"):
            await size_pool(**_args(kwargs))

    @kopf.timer(
        *RESOURCE, registry=registry, id="scale", interval=settings.scale_interval, backoff=10
    )
    async def pool_scale(**kwargs: Any) -> None:
        if kwargs["body"].get("metadata", {}).get("deletionTimestamp"):
            return
        with metrics.reconciling("WorkerPool"):
            await size_pool(**_args(kwargs))


def _args(kwargs: dict[str, Any]) -> dict[str, Any]:
    index = kwargs["functions_by_pool"]
    key = (kwargs["namespace"], kwargs["name"])
    functions = sorted(set(index.get(key, [])))
    keys = ("name", "namespace", "spec", "body", "status", "patch", "memo")
    return {**{k: kwargs[k] for k in keys}, "functions": functions}
