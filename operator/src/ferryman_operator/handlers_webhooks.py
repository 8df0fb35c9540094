"""kopf handlers for Webhook: compile and publish the spec for the gateway, report status.

The gateway reads webhook specs from a JetStream bucket (``ferryman_jetstream.webhooks``);
this handler is what puts a ``Webhook`` resource there. The transform is compiled here
with the same parser the gateway and ``fm.webhook`` use: the API server's own validation
(the CRD's rules) checks the structure but cannot compile a CEL program held in a
string, so a bad transform shows as ``Ready=False`` (``InvalidSpec``, the compiler's
message) and a Warning event as soon as it is applied, and the gateway keeps
the last valid version. The timer copies the gateway's last delivery and last error
into the status and puts back a spec that went missing from JetStream.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import kopf

from ferryman.webhooks import InvalidWebhookError, parse_webhook
from ferryman_jetstream import webhooks as registry
from ferryman_operator import conditions as cond
from ferryman_operator import metrics
from ferryman_operator.settings import OperatorSettings

RESOURCE = ("ferryman.dev", "v1alpha1", "webhooks")
STATUS_FIELDS = ("lastDeliveryTime", "lastDeliveryId", "lastResult", "lastError", "lastErrorTime")


def owner_of(namespace: str | None, name: str) -> str:
    return f"k8s:{namespace}/{name}"


async def reconcile(
    *,
    name: str,
    namespace: str | None,
    spec: Any,
    body: Any,
    status: Any,
    patch: kopf.Patch,
    memo: Any,
    logger: logging.Logger | kopf.Logger,
    settings: OperatorSettings,
    announce: bool,
) -> None:
    generation = body.get("metadata", {}).get("generation")
    path = f"/webhooks/{name}"
    patch.status["path"] = path
    if settings.gateway_url:
        patch.status["url"] = settings.gateway_url.rstrip("/") + path

    def ready(ok: bool, reason: str, message: str) -> None:
        conditions = [cond.Condition("Ready", ok, reason, message)]
        patch.status["conditions"] = cond.merge(status.get("conditions"), conditions, generation)
        patch.status["observedGeneration"] = generation

    try:
        parsed = parse_webhook(name, dict(spec))
    except InvalidWebhookError as error:
        ready(False, "InvalidSpec", str(error))
        if announce:
            kopf.warn(body, reason="InvalidSpec", message=str(error))
        raise kopf.PermanentError(str(error)) from error
    owner = owner_of(namespace, name)
    try:
        replicas = memo.settings.stream_replicas
        stored = await registry.put_webhook(memo.js, name, parsed.to_spec(), owner, replicas)
        holder = None if stored else await registry.webhook_owner(memo.js, name)
        seen = await registry.get_status(memo.js, name)
    except Exception as error:
        message = f"JetStream not reachable or refused the change: {error!r}"
        ready(False, "JetStreamError", message)
        raise kopf.TemporaryError(message, delay=10) from error
    if not stored:
        message = (
            f"the name {name!r} is already taken by {holder}; webhook names are one URL space "
            "across namespaces: rename this Webhook"
        )
        ready(False, "NameTaken", message)
        if announce:
            kopf.warn(body, reason="NameTaken", message=message)
        return
    for key in STATUS_FIELDS:
        if key in seen:
            patch.status[key] = seen[key]
    ready(True, "Serving", f"the gateway accepts deliveries at {path}")
    if announce:
        kopf.info(body, reason="Reconciled", message=f"serving {path}")
        logger.info("webhook %s: serving %s", name, path)


def register(registry_: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    @kopf.on.resume(*RESOURCE, registry=registry_, id="reconcile", backoff=10)
    @kopf.on.create(*RESOURCE, registry=registry_, id="reconcile", backoff=10)
    @kopf.on.update(*RESOURCE, registry=registry_, id="reconcile", backoff=10, field="spec")
    async def webhook_changed(**kwargs: Any) -> None:
        with metrics.reconciling("Webhook"):
            await reconcile(announce=True, settings=settings, **_pick(kwargs))

    @kopf.timer(
        *RESOURCE,
        registry=registry_,
        id="status",
        interval=settings.reconcile_interval,
        initial_delay=settings.reconcile_interval,
        backoff=10,
    )
    async def webhook_status(**kwargs: Any) -> None:
        if kwargs["body"].get("metadata", {}).get("deletionTimestamp"):
            return
        # An invalid spec was reported by the change handler; it is retried on a change.
        with metrics.reconciling("Webhook"), contextlib.suppress(kopf.PermanentError):
            await reconcile(announce=False, settings=settings, **_pick(kwargs))

    @kopf.on.delete(*RESOURCE, registry=registry_, id="cleanup", backoff=10)
    async def webhook_deleted(
        name: str, namespace: str | None, memo: Any, logger: kopf.Logger, **_: Any
    ) -> None:
        try:
            await registry.delete_webhook(memo.js, name, owner_of(namespace, name))
        except Exception as error:
            message = f"cannot remove webhook {name} yet: {error!r}"
            raise kopf.TemporaryError(message, delay=10) from error
        logger.info("webhook %s: no longer served", name)


def _pick(kwargs: dict[str, Any]) -> dict[str, Any]:
    keys = ("name", "namespace", "spec", "body", "status", "patch", "memo", "logger")
    return {k: kwargs[k] for k in keys}
