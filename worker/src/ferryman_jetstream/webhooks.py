"""Where the gateway finds webhooks: two JetStream key-value buckets.

``FERRYMAN_WEBHOOKS`` holds each webhook's spec (the ``Webhook`` CR's ``spec``, keyed by
name), written by the operator from a CR or by a worker from ``fm.webhook`` in code
(``ferryman dev``); ``owner`` says which, so one cannot silently take the other's name.
``FERRYMAN_WEBHOOK_STATUS`` holds what the gateway saw last (last delivery, last error),
which the operator copies into the CR's status. JetStream is the one store both the
operator (no database access) and the gateway reach.
"""

from __future__ import annotations

import json
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, NoKeysError
from nats.js.kv import KeyValue

SPECS_BUCKET = "FERRYMAN_WEBHOOKS"
STATUS_BUCKET = "FERRYMAN_WEBHOOK_STATUS"


async def _bucket(js: JetStreamContext, name: str, replicas: int = 1) -> KeyValue:
    try:
        return await js.key_value(name)
    except BucketNotFoundError:
        return await js.create_key_value(
            KeyValueConfig(bucket=name, history=1, storage=StorageType.FILE, replicas=replicas)
        )


async def _get(js: JetStreamContext, bucket: str, key: str) -> tuple[dict[str, Any], int] | None:
    kv = await _bucket(js, bucket)
    try:
        entry = await kv.get(key)
    except KeyNotFoundError:
        return None
    if not entry.value:
        return None
    return json.loads(entry.value), int(entry.revision or 0)


async def get_webhook(js: JetStreamContext, name: str) -> tuple[dict[str, Any], int] | None:
    """``({"owner": ..., "spec": {...}}, revision)`` or None when no such webhook."""
    return await _get(js, SPECS_BUCKET, name)


async def put_webhook(
    js: JetStreamContext, name: str, spec: dict[str, Any], owner: str, replicas: int = 1
) -> bool:
    """Store ``spec`` for ``name`` unless it is held by another owner; True if stored (or
    already equal)."""
    kv = await _bucket(js, SPECS_BUCKET, replicas)
    current = await get_webhook(js, name)
    record = {"owner": owner, "spec": spec}
    if current is not None:
        if current[0].get("owner") != owner:
            return False
        if current[0] == record:
            return True
    await kv.put(name, json.dumps(record, sort_keys=True).encode())
    return True


async def webhook_owner(js: JetStreamContext, name: str) -> str | None:
    current = await get_webhook(js, name)
    return None if current is None else str(current[0].get("owner"))


async def delete_webhook(js: JetStreamContext, name: str, owner: str) -> None:
    """Remove ``name`` if ``owner`` holds it (a CR deleted after another took the name
    must not remove the other's)."""
    if await webhook_owner(js, name) == owner:
        kv = await _bucket(js, SPECS_BUCKET)
        await kv.purge(name)


async def list_webhooks(js: JetStreamContext) -> dict[str, dict[str, Any]]:
    kv = await _bucket(js, SPECS_BUCKET)
    try:
        keys = await kv.keys()
    except NoKeysError:
        return {}
    found = {}
    for key in keys:
        got = await get_webhook(js, key)
        if got is not None:
            found[key] = got[0]
    return found


async def put_status(js: JetStreamContext, name: str, status: dict[str, Any]) -> None:
    kv = await _bucket(js, STATUS_BUCKET)
    await kv.put(name, json.dumps(status, sort_keys=True).encode())


async def get_status(js: JetStreamContext, name: str) -> dict[str, Any]:
    got = await _get(js, STATUS_BUCKET, name)
    return got[0] if got else {}
