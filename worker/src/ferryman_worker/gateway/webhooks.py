"""``POST /webhooks/{name}`` and the deliveries API.

- ``POST /webhooks/{name}``: a third party's raw callback -> ``{"ids", "delivery_id"}``;
  401 bad signature (nothing stored), 400 bad body or transform error (the delivery is
  kept, no event), 404 unknown webhook, 413 too large, 415 content type.
- ``GET /v1/webhooks``, ``/v1/webhooks/{name}``: owner, path, spec, last delivery/error,
  the last refused deliveries (time, reason, client; never their payload).
- ``GET /v1/webhooks/{name}/deliveries?limit=&cursor=&status=``: newest first.
- ``GET /v1/webhooks/{name}/deliveries/{id}``: one delivery.
- ``POST /v1/webhooks/{name}/deliveries/{id}/rerun``: re-run through the current transform.

Webhook specs are read from JetStream (``ferryman_jetstream.webhooks``) at each delivery
and compiled once per revision, so a changed CR or a restarted ``ferryman dev`` applies at
once. The third party never needs the event key: the signature is the credential.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ferryman._durations import parse_duration
from ferryman.webhooks import InvalidWebhookError, WebhookSpec, parse_webhook
from ferryman_jetstream import webhooks as registry
from ferryman_worker.common import limits, metrics
from ferryman_worker.common.ids import new_id
from ferryman_worker.common.settings import SettingsError
from ferryman_worker.gateway.auth import public
from ferryman_worker.webhooks import deliveries as store
from ferryman_worker.webhooks.transforming import (
    BadBody,
    TransformFailed,
    media_type,
    parse_body,
    transform,
)
from ferryman_worker.webhooks.verifying import NotConfigured, Rejected, verify

if TYPE_CHECKING:
    from ferryman_worker.gateway.app import Gateway

log = logging.getLogger("ferryman.webhooks")
UNKNOWN = "(unknown)"  # the metric label for names that are not webhooks: bounded cardinality
# Headers that carry credentials or signatures are never stored.
ALWAYS_REDACTED = {
    "authorization", "proxy-authorization", "cookie", "x-hub-signature",
    "x-hub-signature-256", "stripe-signature",
}  # fmt: skip
REDACTED = "[redacted]"
RECENT_REJECTIONS = 20  # refused deliveries listed in a webhook's status


class WebhookSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FERRYMAN_WEBHOOK_", extra="ignore")

    secrets_dir: Path = Field(
        default=Path("/etc/ferryman/webhook-secrets"),
        description="where Secrets named by secretRef are mounted: <dir>/<secret>/<key>",
    )
    delivery_retention: str = Field(
        default="7d", description="how long deliveries are kept for debugging and re-runs"
    )

    @field_validator("delivery_retention")
    @classmethod
    def _duration(cls, value: str) -> str:
        if parse_duration(value, what="delivery retention") < timedelta(minutes=1):
            raise ValueError("must be at least 1m")
        return value


def load_webhook_settings() -> WebhookSettings:
    try:
        return WebhookSettings()
    except ValidationError as exc:
        lines = [f"FERRYMAN_WEBHOOK_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}"
                 for e in exc.errors()]  # fmt: skip
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, "status": status, **extra}, status_code=status)


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Webhooks:
    """The webhook handlers, bound to a :class:`Gateway` (whose connections open later)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.settings = load_webhook_settings()
        self.retention = parse_duration(self.settings.delivery_retention)
        self._compiled: dict[str, tuple[int, WebhookSpec | InvalidWebhookError]] = {}
        self._status: dict[str, dict[str, Any]] = {}
        self._deliveries: store.Deliveries | None = None

    @property
    def deliveries(self) -> store.Deliveries:
        if self._deliveries is None:
            self._deliveries = store.Deliveries(self.gateway.pool, self.retention)
        return self._deliveries

    async def _spec(self, name: str) -> WebhookSpec | InvalidWebhookError | None:
        if not registry_name_ok(name):
            return None
        found = await registry.get_webhook(self.gateway.js, name)
        if found is None:
            return None
        record, revision = found
        cached = self._compiled.get(name)
        if cached is None or cached[0] != revision:
            try:
                spec: WebhookSpec | InvalidWebhookError = parse_webhook(name, record.get("spec"))
            except InvalidWebhookError as exc:
                spec = exc
            self._compiled[name] = cached = (revision, spec)
        return cached[1]

    async def _report(self, name: str, **fields: Any) -> None:
        """Last delivery and last error, for the CR's status (best effort)."""
        status = self._status.setdefault(name, {})
        status.update(fields)
        with contextlib.suppress(Exception):
            await registry.put_status(self.gateway.js, name, status)

    def _rejected(self, name: str, reason: str, message: str, client: str) -> list[Any]:
        """The last few refused deliveries, newest first: they are not stored as deliveries
        (nothing of an unverified payload is kept), so this is how people see them."""
        kept = self._status.get(name, {}).get("recentRejections", [])
        seen = {"time": _now(), "reason": reason, "message": message, "client": client}
        return [seen, *kept][:RECENT_REJECTIONS]

    def _reject(self, name: str, reason: str, status: int, message: str) -> JSONResponse:
        metrics.WEBHOOK_REJECTED.labels(name, reason).inc()
        return _error(status, message)

    async def receive(self, request: Request) -> Response:
        name = request.path_params["name"]
        try:
            spec = await self._spec(name)
        except Exception as exc:
            return _error(503, f"cannot look up webhooks right now ({type(exc).__name__}); retry")
        if spec is None:
            return self._reject(UNKNOWN, "unknown_webhook", 404, f"no webhook {name!r}")
        metrics.WEBHOOK_RECEIVED.labels(name).inc()
        if isinstance(spec, InvalidWebhookError):
            log.error("webhook %s: its spec is invalid: %s", name, spec)
            return self._reject(name, "not_configured", 503, f"webhook {name!r} is not ready")
        kind = media_type(request.headers.get("content-type"))
        if kind not in spec.content_types:
            return self._reject(
                name, "content_type", 415,
                f"content type {kind or '(none)'!r} is not accepted; send "
                + " or ".join(spec.content_types),
            )  # fmt: skip
        try:
            raw = await limits.read_body(request, spec.max_body_bytes)
        except limits.BadRequest as exc:
            reason = "too_large" if exc.status == 413 else "malformed_body"
            return self._reject(name, reason, exc.status, str(exc))
        except ClientDisconnect:
            return self._reject(name, "disconnected", 400, "the client went away")
        headers = {k.lower(): v for k, v in request.headers.items()}
        query = dict(request.query_params)
        try:
            verify(spec.verification, raw, headers, query, self.settings.secrets_dir)
        except Rejected as exc:
            # Nothing of the payload is stored or logged: only who, why and a counter.
            client = request.client.host if request.client else "?"
            log.warning("webhook %s: rejected a delivery from %s: %s", name, client, exc.reason)
            await self._report(
                name, lastError=f"rejected: {exc}", lastErrorTime=_now(),
                recentRejections=self._rejected(name, exc.reason, str(exc), client),
            )  # fmt: skip
            return self._reject(name, exc.reason, 401, f"webhook {name!r}: {exc}")
        except NotConfigured as exc:
            log.error("webhook %s: cannot verify deliveries: %s", name, exc)
            await self._report(name, lastError=f"not configured: {exc}", lastErrorTime=_now())
            return self._reject(
                name, "not_configured", 503,
                f"webhook {name!r} is not ready: its secret is not configured on the gateway",
            )  # fmt: skip
        try:
            body = parse_body(kind, raw)
        except BadBody as exc:
            return self._reject(name, "malformed_body", 400, str(exc))
        delivery = {
            "id": new_id(), "webhook": name, "content_type": kind,
            "headers": _redact(headers, spec), "query": _redact_query(query, spec),
            "body": raw, "verification": spec.verification.type,
            "status": store.ACCEPTED, "output": None, "event_ids": [], "error": None,
        }  # fmt: skip
        try:
            events = transform(spec, raw, body, headers, query, self.gateway.limits)
        except TransformFailed as exc:
            metrics.WEBHOOK_TRANSFORM_ERRORS.labels(name).inc()
            delivery.update(status=store.TRANSFORM_FAILED, error=str(exc))
            try:
                await self.deliveries.record(delivery)
            except Exception as db_exc:
                return _error(503, f"could not record the delivery ({type(db_exc).__name__})")
            await self._report(
                name, lastDeliveryTime=_now(), lastDeliveryId=delivery["id"],
                lastResult=store.TRANSFORM_FAILED, lastError=str(exc), lastErrorTime=_now(),
            )  # fmt: skip
            return _error(400, str(exc), delivery_id=delivery["id"])
        delivery.update(output=[e.to_wire() for e in events], event_ids=[e.id for e in events])
        try:
            if events:
                bus = self.gateway.bus
                await bus.publish(events, await bus.store(events))
            await self.deliveries.record(delivery)
        except Exception as exc:
            return _error(
                503,
                f"could not accept the delivery right now ({type(exc).__name__}); "
                "retry: the events' ids make it safe",
            )
        metrics.WEBHOOK_EVENTS.labels(name).inc(len(events))
        await self._report(
            name, lastDeliveryTime=_now(), lastDeliveryId=delivery["id"], lastResult=store.ACCEPTED
        )
        ids = [e.id for e in events]
        return JSONResponse({"ids": ids, "delivery_id": delivery["id"], "status": 200})

    async def _describe(self, name: str, record: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": name,
            "owner": record.get("owner"),
            "path": f"/webhooks/{name}",
            "spec": record.get("spec"),
            "status": await registry.get_status(self.gateway.js, name),
        }

    async def list(self, request: Request) -> Response:
        found = await registry.list_webhooks(self.gateway.js)
        return JSONResponse(
            {"data": [await self._describe(n, r) for n, r in sorted(found.items())]}
        )

    async def get(self, request: Request) -> Response:
        name = request.path_params["name"]
        found = (
            await registry.get_webhook(self.gateway.js, name) if registry_name_ok(name) else None
        )
        if found is None:
            return _error(404, f"no webhook {name!r}")
        return JSONResponse({"data": await self._describe(name, found[0])})

    async def list_deliveries(self, request: Request) -> Response:
        q = request.query_params
        status = q.get("status")
        if status and status not in (store.ACCEPTED, store.TRANSFORM_FAILED):
            return _error(400, f"status must be {store.ACCEPTED} or {store.TRANSFORM_FAILED}")
        try:
            limit = int(q.get("limit", "50"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 500:
            return _error(400, "limit must be a number from 1 to 500")
        page, cursor = await self.deliveries.page(
            request.path_params["name"], limit, q.get("cursor"), status
        )
        return JSONResponse({"data": page, "cursor": cursor})

    async def get_delivery(self, request: Request) -> Response:
        name, delivery_id = request.path_params["name"], request.path_params["delivery_id"]
        row = await self.deliveries.get(name, delivery_id)
        if row is None:
            return _error(404, f"no delivery {delivery_id!r} of webhook {name!r}")
        return JSONResponse({"data": store.view(row)})

    async def rerun(self, request: Request) -> Response:
        """Run a kept delivery through the webhook's current transform (it was verified
        when it arrived; it is not verified again, as a Stripe timestamp would be stale)."""
        name, delivery_id = request.path_params["name"], request.path_params["delivery_id"]
        row = await self.deliveries.get(name, delivery_id)
        if row is None:
            return _error(404, f"no delivery {delivery_id!r} of webhook {name!r}")
        spec = await self._spec(name)
        if spec is None:
            return _error(409, f"webhook {name!r} no longer exists")
        if isinstance(spec, InvalidWebhookError):
            return _error(409, f"webhook {name!r} is invalid: {spec}")
        raw = bytes(row["body"])
        try:
            body = parse_body(row["content_type"], raw)
            events = transform(spec, raw, body, row["headers"], row["query"], self.gateway.limits)
        except (BadBody, TransformFailed) as exc:
            metrics.WEBHOOK_TRANSFORM_ERRORS.labels(name).inc()
            await self.deliveries.rerun_result(
                delivery_id, store.TRANSFORM_FAILED, None, [], str(exc)
            )
            fresh = await self.deliveries.get(name, delivery_id)
            return _error(422, str(exc), data=store.view(fresh) if fresh else None)
        if events:
            await self.gateway.bus.publish(events, await self.gateway.bus.store(events))
        metrics.WEBHOOK_EVENTS.labels(name).inc(len(events))
        await self.deliveries.rerun_result(
            delivery_id,
            store.ACCEPTED,
            [e.to_wire() for e in events],
            [e.id or "" for e in events],
            None,
        )
        fresh = await self.deliveries.get(name, delivery_id)
        return JSONResponse({"data": store.view(fresh) if fresh else None})


def registry_name_ok(name: str) -> bool:
    from ferryman._webhooks import NAME

    return bool(NAME.match(name))


def _redact(headers: dict[str, str], spec: WebhookSpec) -> dict[str, str]:
    secret_header = (spec.verification.header or "").lower()
    return {
        k: REDACTED if k in ALWAYS_REDACTED or k == secret_header else v for k, v in headers.items()
    }


def _redact_query(query: dict[str, str], spec: WebhookSpec) -> dict[str, str]:
    param = spec.verification.query_param
    return {k: REDACTED if k == param else v for k, v in query.items()}


def webhook_routes(gateway: Gateway) -> list[Route]:
    hooks = Webhooks(gateway)
    return [
        # The signature is the credential: no API token (gateway/auth.py denies by default).
        public(Route("/webhooks/{name}", hooks.receive, methods=["POST"])),
        Route("/v1/webhooks", hooks.list),
        Route("/v1/webhooks/{name}", hooks.get),
        Route("/v1/webhooks/{name}/deliveries", hooks.list_deliveries),
        Route("/v1/webhooks/{name}/deliveries/{delivery_id}", hooks.get_delivery),
        Route("/v1/webhooks/{name}/deliveries/{delivery_id}/rerun", hooks.rerun, methods=["POST"]),
    ]
