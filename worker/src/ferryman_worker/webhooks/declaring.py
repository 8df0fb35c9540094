"""Webhooks declared in code (``fm.webhook``) made available to the gateway.

A worker that manages its own topology (``ferryman dev``, plain installs) puts each of its
webhooks into the JetStream bucket the gateway reads, owned by ``code:<app id>``. Under
the operator (``FERRYMAN_MANAGE_TOPOLOGY=false``) the ``Webhook`` resources from
``ferryman manifests`` do it instead. A name already held by a ``Webhook`` resource is left
alone, with a warning: the cluster's declaration wins.
"""

from __future__ import annotations

import logging

from nats.js import JetStreamContext

from ferryman import Ferryman
from ferryman_jetstream import webhooks as registry

log = logging.getLogger("ferryman.webhooks")


async def declare_webhooks(js: JetStreamContext, apps: list[Ferryman]) -> list[str]:
    """Put every webhook of ``apps`` in place, and withdraw those an app no longer
    declares (a webhook deleted from the code under ``ferryman dev``); return the names
    now served."""
    served = []
    held = await registry.list_webhooks(js)
    for app in apps:
        for name, record in held.items():
            if record.get("owner") == f"code:{app.app_id}" and name not in app.webhooks:
                await registry.delete_webhook(js, name, f"code:{app.app_id}")
                log.info("webhook %s is no longer declared by %s: withdrawn", name, app.app_id)
        for name, spec in app.webhooks.items():
            owner = f"code:{app.app_id}"
            current = await registry.webhook_owner(js, name)
            if current is not None and current != owner and not current.startswith("code:"):
                log.warning("webhook %s is declared by %s; the code's version is not used",
                            name, current)  # fmt: skip
                continue
            if current is not None and current != owner:
                # Another app in code had the name (a renamed app in `ferryman dev`): take it.
                await registry.delete_webhook(js, name, current)
            await registry.put_webhook(js, name, spec.to_spec(), owner)
            served.append(name)
    if served:
        log.info("webhooks served at /webhooks/<name>: %s", ", ".join(served))
    return served
