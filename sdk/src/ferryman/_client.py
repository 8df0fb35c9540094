"""The application object: ``Ferryman(app_id=...)``, the function decorator and ``send``."""

from __future__ import annotations

import asyncio
import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import ValidationError

from ferryman._config import (
    Backoff,
    BatchEvents,
    Cancel,
    Concurrency,
    Debounce,
    FunctionConfig,
    Priority,
    RateLimit,
    Singleton,
    Throttle,
    Timeouts,
    Trigger,
    on_event,
)
from ferryman._events import Event, EventModel, coerce_events
from ferryman._function import Function, Handler
from ferryman._runtime import current_sender
from ferryman._webhooks import (
    DEFAULT_CONTENT_TYPES,
    DEFAULT_MAX_BODY,
    Verification,
    WebhookSpec,
    parse_webhook,
)
from ferryman.errors import FerrymanError, InvalidFunctionError

FAILED_EVENT = "ferryman/function.failed"
DEFAULT_EVENT_API = "http://127.0.0.1:8288"
_APP_ID = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


class Ferryman:
    """An application: a named set of durable functions.

    Args:
        app_id: lowercase letters, digits and dashes; prefixes every function id.
        event_key: the key ``send`` uses (default ``FERRYMAN_EVENT_KEY`` or ``dev``).
        event_api: the gateway ``send`` posts to when not inside a worker
            (default ``FERRYMAN_EVENT_API`` or http://127.0.0.1:8288).
    """

    def __init__(
        self, *, app_id: str, event_key: str | None = None, event_api: str | None = None
    ) -> None:
        if not isinstance(app_id, str) or not _APP_ID.match(app_id):
            raise InvalidFunctionError(
                f"app_id {app_id!r} must be lowercase letters, digits and dashes, like 'bookings'"
            )
        self.app_id = app_id
        self.event_key = event_key or os.environ.get("FERRYMAN_EVENT_KEY", "dev")
        self.event_api = (
            event_api or os.environ.get("FERRYMAN_EVENT_API") or DEFAULT_EVENT_API
        ).rstrip("/")
        self.functions: dict[str, Function] = {}
        self.webhooks: dict[str, WebhookSpec] = {}

    def function(
        self,
        *,
        id: str,
        trigger: Trigger | None = None,
        triggers: Iterable[Trigger] | None = None,
        name: str | None = None,
        retries: int = 4,
        backoff: Backoff | dict[str, Any] | None = None,
        on_failure: Handler | None = None,
        concurrency: Concurrency | list[Concurrency] | int | None = None,
        throttle: Throttle | None = None,
        rate_limit: RateLimit | None = None,
        debounce: Debounce | None = None,
        batch_events: BatchEvents | None = None,
        priority: Priority | None = None,
        idempotency: str | None = None,
        singleton: Singleton | None = None,
        timeouts: Timeouts | None = None,
        cancel_on: list[Cancel] | None = None,
    ) -> Callable[[Handler], Function]:
        """Declare a durable function (see FEATURES.md for every option's semantics)."""
        if (trigger is None) == (triggers is None):
            raise InvalidFunctionError(
                f"function {id!r}: give exactly one of trigger=... or triggers=[...]"
            )
        all_triggers = (trigger,) if trigger is not None else tuple(triggers or ())
        if isinstance(concurrency, int):
            concurrency = [Concurrency(limit=concurrency)]
        elif isinstance(concurrency, Concurrency):
            concurrency = [concurrency]
        options = {
            "id": id, "name": name, "triggers": all_triggers, "retries": retries,
            "backoff": backoff, "concurrency": tuple(concurrency or ()), "throttle": throttle,
            "rate_limit": rate_limit, "debounce": debounce, "batch_events": batch_events,
            "priority": priority, "idempotency": idempotency, "singleton": singleton,
            "timeouts": timeouts, "cancel_on": tuple(cancel_on or ()),
        }  # fmt: skip
        try:
            config = FunctionConfig.model_validate(
                {k: v for k, v in options.items() if v is not None}
            )
        except ValidationError as exc:
            raise InvalidFunctionError(f"function {id!r}: {_explain(exc)}") from None

        def register(handler: Handler) -> Function:
            if not asyncio.iscoroutinefunction(handler):
                raise InvalidFunctionError(
                    f"function {id!r}: {handler.__name__} must be an 'async def' function"
                )
            fn = Function(self.app_id, config, handler, on_failure=on_failure)
            self._add(fn)
            if on_failure is not None:
                self._add_failure_handler(fn, on_failure)
            return fn

        return register

    def webhook(
        self,
        *,
        name: str,
        transform: str,
        verify: Verification,
        content_types: Iterable[str] = DEFAULT_CONTENT_TYPES,
        max_body_bytes: int = DEFAULT_MAX_BODY,
    ) -> WebhookSpec:
        """Declare ``POST /webhooks/{name}``: deliveries are verified with ``verify`` (see
        :mod:`ferryman.webhooks`) and turned into events by the CEL ``transform`` over
        ``body``, ``headers`` and ``query``. The transform yields one event
        (``{"name": ..., "data": ..., "id": ...}``) or a list of them; ``id`` (the sender's
        delivery id, say) makes a redelivery one event."""
        if not isinstance(verify, Verification):
            raise InvalidFunctionError(
                f"webhook {name!r}: verify must be one of ferryman.webhooks.hmac_sha256(), "
                "github(), stripe(), token() or none()"
            )
        spec = parse_webhook(name, {
            "transform": transform, "verification": verify.to_spec(),
            "contentTypes": list(content_types), "maxBodyBytes": max_body_bytes,
        })  # fmt: skip
        if name in self.webhooks:
            raise InvalidFunctionError(f"webhook {name!r} is declared twice")
        self.webhooks[name] = spec
        return spec

    def _add(self, fn: Function) -> None:
        if fn.id in self.functions:
            raise InvalidFunctionError(f"function id {fn.config.id!r} is declared twice")
        self.functions[fn.id] = fn

    def _add_failure_handler(self, fn: Function, handler: Handler) -> None:
        config = FunctionConfig(
            id=f"{fn.config.id}-failure",
            name=f"{fn.name} (on failure)",
            triggers=(on_event(FAILED_EVENT, if_=f"event.data.function_id == {fn.id!r}"),),
            retries=0,
        )
        self._add(Function(self.app_id, config, handler, is_failure_handler=True))

    async def send(self, events: Event | EventModel | dict[str, Any] | list[Any]) -> list[str]:
        """Send one or more events; returns their ids. Typed events are validated first."""
        batch = coerce_events(events)
        sender = current_sender()
        if sender is not None:
            return await sender.send(batch)
        return await asyncio.to_thread(self._post, [e.to_wire() for e in batch])

    def _post(self, payload: list[dict[str, Any]]) -> list[str]:
        url = f"{self.event_api}/e/{self.event_key}"
        request = urllib.request.Request(
            url,
            data=json.dumps(payload).encode(),
            method="POST",
            headers={"Content-Type": "application/json", **_trace_headers()},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                ids: list[str] = json.loads(response.read())["ids"]
                return ids
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise FerrymanError(f"the gateway at {url} refused the events: {detail}") from None
        except urllib.error.URLError as exc:
            raise FerrymanError(
                f"cannot reach the gateway at {url} ({exc.reason}); is `ferryman dev` running, "
                "or is FERRYMAN_EVENT_API set to your gateway?"
            ) from None


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "options"
        parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def _trace_headers() -> dict[str, str]:
    """The current OpenTelemetry context as HTTP headers (``traceparent``), so the runs
    the events start join the sender's trace; nothing without ``opentelemetry-api``."""
    try:
        from opentelemetry import propagate
    except ImportError:
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier
