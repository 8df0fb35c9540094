"""kopf handlers for DurableFunction: consumers and schedules in JetStream, status, cleanup."""

from __future__ import annotations

import logging
from typing import Any

import kopf

import ferryman_jetstream
from ferryman_jetstream.schedules import cron_definitions
from ferryman_operator import conditions as cond
from ferryman_operator import metrics
from ferryman_operator import spec as fspec
from ferryman_operator.settings import OperatorSettings

RESOURCE = ("ferryman.dev", "v1alpha1", "durablefunctions")


async def _schedule_condition(js: Any, topo: ferryman_jetstream.FunctionTopology) -> cond.Condition:
    if not topo.crons:
        return cond.Condition("ScheduleReady", True, "NoCronTriggers", "no cron triggers")
    held = await cron_definitions(js, topo.function_id)
    if len(held) == len(topo.crons):
        return cond.Condition(
            "ScheduleReady", True, "Scheduled", f"{len(held)} cron schedule(s) armed in JetStream"
        )
    return cond.Condition(
        "ScheduleReady",
        False,
        "ScheduleMissing",
        f"JetStream holds {len(held)} of {len(topo.crons)} cron schedules",
    )


async def reconcile(
    *,
    name: str,
    namespace: str,
    spec: Any,
    body: Any,
    status: Any,
    patch: kopf.Patch,
    memo: Any,
    logger: logging.Logger | kopf.Logger,
    pools: kopf.Index[tuple[str, str], bool],
    announce: bool,
) -> None:
    """Make JetStream hold what the spec asks for and report it in status and events."""
    generation = body.get("metadata", {}).get("generation")
    updates: list[cond.Condition] = []
    try:
        topo = fspec.topology(name, spec, body.get("metadata", {}).get("creationTimestamp"))
    except fspec.SpecError as error:
        updates = [
            cond.Condition(t, False, "InvalidSpec", str(error))
            for t in ("ConsumersReady", "ScheduleReady", "Ready")
        ]
        patch.status["conditions"] = cond.merge(status.get("conditions"), updates, generation)
        kopf.warn(body, reason="InvalidSpec", message=str(error))
        raise kopf.PermanentError(str(error)) from error

    patch.status["functionId"] = topo.function_id
    patch.status["triggers"] = fspec.triggers_summary(spec)
    js = memo.js
    try:
        changed = await ferryman_jetstream.reconcile_function(js, topo, only_if_changed=True)
        schedule = await _schedule_condition(js, topo)
        counts = await ferryman_jetstream.backlog_counts(js, topo.function_id)
    except Exception as error:
        message = f"JetStream not reachable or refused the change: {error!r}"
        updates = [
            cond.Condition("ConsumersReady", False, "JetStreamError", message),
            cond.Condition("Ready", False, "JetStreamError", message),
        ]
        patch.status["conditions"] = cond.merge(status.get("conditions"), updates, generation)
        raise kopf.TemporaryError(message, delay=10) from error

    for change in changed:
        if announce:
            kopf.info(body, reason="Reconciled", message=change)
        else:  # the drift timer found something missing and put it back
            kopf.warn(body, reason="DriftCorrected", message=change)
        logger.info("%s: %s", topo.function_id, change)

    consumers = fspec.consumer_names(topo)
    pool = str(spec.get("workerPool", ""))
    pool_ok = (namespace, pool) in pools
    consumers_cond = cond.Condition(
        "ConsumersReady",
        True,
        "ConsumersReconciled",
        f"{len(consumers)} consumer(s): {', '.join(consumers)}",
    )
    if not schedule.ok:
        ready = cond.Condition("Ready", False, schedule.reason, schedule.message)
    elif not pool_ok:
        ready = cond.Condition(
            "Ready",
            False,
            "WorkerPoolNotFound",
            f"WorkerPool {pool!r} does not exist in namespace {namespace!r}; runs will wait for it",
        )
    else:
        ready = cond.Condition("Ready", True, "Reconciled", "consumers and schedules in place")
    patch.status["conditions"] = cond.merge(
        status.get("conditions"), [consumers_cond, schedule, ready], generation
    )
    patch.status["consumers"] = consumers
    patch.status["schedules"] = len(topo.crons)
    patch.status["backlog"] = counts.total
    patch.status["observedGeneration"] = generation
    patch.status["lastReconcileTime"] = cond.now()


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    @kopf.on.resume(*RESOURCE, registry=registry, id="reconcile", backoff=10)
    @kopf.on.create(*RESOURCE, registry=registry, id="reconcile", backoff=10)
    @kopf.on.update(*RESOURCE, registry=registry, id="reconcile", backoff=10, field="spec")
    async def function_changed(**kwargs: Any) -> None:
        with metrics.reconciling("DurableFunction"):
            await reconcile(announce=True, pools=kwargs.pop("workerpools_by_name"), **_pick(kwargs))

    @kopf.timer(
        *RESOURCE,
        registry=registry,
        id="drift",
        interval=settings.reconcile_interval,
        initial_delay=settings.reconcile_interval,
        backoff=10,
    )
    async def function_drift(**kwargs: Any) -> None:
        if kwargs["body"].get("metadata", {}).get("deletionTimestamp"):
            return
        with metrics.reconciling("DurableFunction"):
            await reconcile(
                announce=False, pools=kwargs.pop("workerpools_by_name"), **_pick(kwargs)
            )

    @kopf.on.delete(*RESOURCE, registry=registry, id="cleanup", backoff=10)
    async def function_deleted(
        name: str, spec: Any, body: Any, memo: Any, logger: kopf.Logger, **_: Any
    ) -> None:
        function_id = fspec.function_id(name, spec)
        try:
            await ferryman_jetstream.remove_function(memo.js, function_id)
        except Exception as error:
            raise kopf.TemporaryError(
                f"cannot remove the consumers of {function_id} yet: {error!r}", delay=10
            ) from error
        logger.info("%s: consumers and schedules removed", function_id)

    @kopf.index(
        "ferryman.dev", "v1alpha1", "workerpools", registry=registry, id="workerpools_by_name"
    )
    def workerpools_by_name(
        name: str, namespace: str | None, **_: Any
    ) -> dict[tuple[str | None, str], bool]:
        return {(namespace, name): True}

    @kopf.index(*RESOURCE, registry=registry, id="functions_by_pool")
    def functions_by_pool(name: str, namespace: str | None, spec: Any, **_: Any) -> dict[Any, str]:
        return {(namespace, str(spec.get("workerPool", ""))): fspec.function_id(name, spec)}


def _pick(kwargs: dict[str, Any]) -> dict[str, Any]:
    keys = ("name", "namespace", "spec", "body", "status", "patch", "memo", "logger")
    return {k: kwargs[k] for k in keys}
