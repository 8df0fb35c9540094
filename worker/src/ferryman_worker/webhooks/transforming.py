"""From a delivery to events: parse the body by content type, run the CEL transform over
``body``, ``headers`` and ``query``, and validate what it made exactly as ``POST /e`` does.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qsl

from ferryman import Event
from ferryman.webhooks import WebhookSpec
from ferryman_worker.common.limits import BadRequest, check_json, load_json
from ferryman_worker.storage.events import BadEvent, EventLimits, parse_events

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


class BadBody(ValueError):
    """The body cannot be read as its content type says (400)."""


class TransformFailed(ValueError):
    """The transform raised or made something that is not events (400, delivery kept)."""


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``; ``+json`` types count as
    JSON (``application/vnd.github+json``)."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind.startswith("application/") and kind.endswith("+json"):
        return JSON
    return kind


def parse_body(kind: str, raw: bytes) -> Any:
    if kind == JSON:
        # The gateway's one JSON reader: NUL characters, huge integers and deep nesting
        # (which PostgreSQL or later readers refuse) are refused here with a 400.
        try:
            return load_json(raw, "the body")
        except BadRequest as exc:
            raise BadBody(str(exc)) from None
    try:
        text = raw.decode()
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadBody(f"the body is not valid form data ({exc})") from None
    form: dict[str, Any] = {}
    for key, value in pairs:
        # A repeated field becomes a list, as most frameworks read it.
        if key in form:
            form[key] = [*form[key], value] if isinstance(form[key], list) else [form[key], value]
        else:
            form[key] = value
    try:
        check_json(form, "the form")
    except BadRequest as exc:
        raise BadBody(str(exc)) from None
    return form


def default_id(webhook: str, raw: bytes, index: int) -> str:
    """An event id for a transform that gives none: the same body redelivered is the same
    event, so a sender's retry is deduplicated even without a delivery id."""
    digest = hashlib.sha256(webhook.encode() + b"\n" + raw).hexdigest()[:40]
    return f"webhook-{webhook}-{digest}-{index}"


def transform(
    spec: WebhookSpec,
    raw: bytes,
    body: Any,
    headers: dict[str, str],
    query: dict[str, str],
    limits: EventLimits,
) -> list[Event]:
    """The events ``spec``'s transform makes of one delivery (may be none: ``[]``)."""
    try:
        result = spec.transform.evaluate({"body": body, "headers": headers, "query": query})
    except Exception as exc:  # the cel library raises KeyError, TypeError, ValueError, ...
        detail = f"no such key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise TransformFailed(
            f"the transform {spec.transform.source!r} failed: {type(exc).__name__}: {detail}"
        ) from None
    items = result if isinstance(result, list) else [result]
    if not all(isinstance(item, dict) for item in items):
        raise TransformFailed(
            f"the transform must make an event object or a list of them, not {result!r:.200}"
        )
    if not items:
        return []
    items = [
        item if item.get("id") is not None else {**item, "id": default_id(spec.name, raw, i)}
        for i, item in enumerate(items)
    ]
    try:
        return parse_events(items, limits)
    except BadEvent as exc:
        raise TransformFailed(f"the transform made a bad event: {exc}") from None
    except TypeError as exc:  # a CEL value JSON cannot hold (bytes, a timestamp)
        raise TransformFailed(f"the transform made a value JSON cannot hold: {exc}") from None
