"""From functions in code to Kubernetes resources: ``ferryman manifests -m MODULE``.

:func:`function_spec` is the one mapping from a function's configuration to a
DurableFunction ``spec`` (the schema is in ``crds/``); the worker's drift check compares
against the same mapping, so what ``manifests`` prints is exactly what the worker expects.
"""

from __future__ import annotations

import types
from datetime import timedelta
from typing import Any

import yaml

from ferryman import CronTrigger, Ferryman, Function
from ferryman._durations import format_duration

API_VERSION = "ferryman.dev/v1alpha1"


def _duration(value: timedelta | None) -> str | None:
    return format_duration(value) if value is not None else None


def _clean(value: Any) -> Any:
    """Drop None values and empty lists/dicts, recursively, as the API server would keep them."""
    if isinstance(value, dict):
        cleaned = {k: _clean(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v not in (None, [], {})}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _attribute_names(module: types.ModuleType) -> dict[int, str]:
    return {id(v): k for k, v in vars(module).items() if isinstance(v, Function)}


def code_name(fn: Function, module: types.ModuleType | None, owners: dict[str, Function]) -> str:
    """The attribute the function is bound to in its module (``handler.on_failure`` for a
    failure handler, which has no attribute of its own)."""
    names = _attribute_names(module) if module is not None else {}
    if fn.is_failure_handler:
        parent = owners.get(fn.config.id.removesuffix("-failure"))
        parent_name = names.get(id(parent), fn.handler.__name__) if parent else "handler"
        return f"{parent_name}.on_failure"
    return names.get(id(fn), fn.handler.__name__)


def function_spec(fn: Function, module_name: str, code: str, pool: str) -> dict[str, Any]:
    c = fn.config
    triggers: list[dict[str, Any]] = []
    for t in c.triggers:
        if isinstance(t, CronTrigger):
            triggers.append(
                {"cron": t.cron, "timezone": None if t.timezone == "UTC" else t.timezone}
            )
        else:
            triggers.append({"event": t.event, "if": t.if_})
    spec = {
        # functionId is left out: it defaults to the resource's name, which is fn.id, and
        # the API server refuses to add it to a resource that was created without it.
        "app": fn.app_id,
        "code": {"module": module_name, "function": code},
        "workerPool": pool, "triggers": triggers, "retries": c.retries,
        "concurrency": [{"limit": x.limit, "key": x.key,
                         "scope": None if x.scope == "fn" else x.scope} for x in c.concurrency],
        "throttle": c.throttle and {"limit": c.throttle.limit,
                                    "period": _duration(c.throttle.period),
                                    "burst": c.throttle.burst, "key": c.throttle.key},
        "rateLimit": c.rate_limit and {"limit": c.rate_limit.limit,
                                       "period": _duration(c.rate_limit.period),
                                       "key": c.rate_limit.key},
        "debounce": c.debounce and {"period": _duration(c.debounce.period),
                                    "key": c.debounce.key,
                                    "timeout": _duration(c.debounce.timeout)},
        "batchEvents": c.batch_events and {"maxSize": c.batch_events.max_size,
                                           "timeout": _duration(c.batch_events.timeout),
                                           "key": c.batch_events.key},
        "priority": c.priority and {"run": c.priority.run},
        "idempotency": c.idempotency,
        "singleton": c.singleton and {"key": c.singleton.key, "mode": c.singleton.mode},
        "timeouts": c.timeouts and {"start": _duration(c.timeouts.start),
                                    "finish": _duration(c.timeouts.finish)},
        "cancelOn": [{"event": x.event, "match": x.match, "if": x.if_,
                      "timeout": _duration(x.timeout)} for x in c.cancel_on],
    }  # fmt: skip
    cleaned: dict[str, Any] = _clean(spec)
    if c.retries == 0:
        cleaned["retries"] = 0  # zero is a value, not an absence
    return cleaned


def manifests(
    apps: list[Ferryman], module: types.ModuleType, pool: str | None, image: str | None
) -> list[dict[str, Any]]:
    """The resources for ``apps``: a WorkerPool when an image is given, a
    DurableFunction per function and a Webhook per ``fm.webhook``."""
    docs: list[dict[str, Any]] = []
    for app in apps:
        pool_name = pool or app.app_id
        if image:
            docs.append({
                "apiVersion": API_VERSION, "kind": "WorkerPool",
                "metadata": {"name": pool_name},
                "spec": {"image": image, "module": module.__name__, "replicas": 1},
            })  # fmt: skip
        owners = {f.config.id: f for f in app.functions.values()}
        for fn in app.functions.values():
            docs.append({
                "apiVersion": API_VERSION, "kind": "DurableFunction",
                "metadata": {"name": fn.id},
                "spec": function_spec(fn, module.__name__, code_name(fn, module, owners),
                                      pool_name),
            })  # fmt: skip
        for name, webhook in app.webhooks.items():
            docs.append({
                "apiVersion": API_VERSION, "kind": "Webhook",
                "metadata": {"name": name}, "spec": webhook.to_spec(),
            })  # fmt: skip
    return docs


def render(docs: list[dict[str, Any]], module: str) -> str:
    header = f"# Generated by `ferryman manifests -m {module}`; apply with kubectl apply -f -\n"
    body = "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs)
    return header + body
