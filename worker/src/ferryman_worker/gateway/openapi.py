"""The OpenAPI 3.1 description of the gateway's HTTP API, served at ``GET /openapi.json``.

Written by hand, close to the handlers it describes; ``tests/integration/test_openapi.py``
checks that every route the gateway serves (but the console's files) is described here,
and schemathesis fuzzes the gateway from this document in CI.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

STATUSES = ["QUEUED", "RUNNING", "SLEEPING", "WAITING", "COMPLETED", "FAILED", "CANCELLED"]
_ERROR = {"$ref": "#/components/schemas/Error"}
_ANY_OBJECT = {"type": "object"}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _path(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "minLength": 1}}  # fmt: skip


def _answers(ok: str, *codes: int, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "200": {
            "description": ok,
            "content": {"application/json": {"schema": schema or _ANY_OBJECT}},
        }
    }
    for code in (*codes, 401):
        out[str(code)] = {"description": _REASONS[code],
                          "content": {"application/json": {"schema": _ERROR}}}  # fmt: skip
    return out


_REASONS = {
    400: "bad input; `error` names the field",
    401: "no or unknown credential",
    403: "the token's role does not allow this",
    404: "not found",
    409: "not possible in the run's current state",
    413: "body too large",
    415: "unsupported content type",
    503: "storage unreachable; retry",
}


def _json_body(schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


_TIME = {"type": "string", "description": "ISO 8601 time, e.g. 2026-01-31T12:00:00Z"}
_RUN_FILTER = {
    "type": "object",
    "additionalProperties": False,
    "required": ["function_id"],
    "properties": {
        "function_id": {"type": "string", "minLength": 1, "maxLength": 256},
        "status": {"type": "string", "enum": STATUSES},
        "after": _TIME,
        "before": _TIME,
    },
}
_EVENT = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 256},
        "data": {"type": "object"},
        "id": {"type": "string", "maxLength": 256},
        "ts": {"type": "integer", "minimum": 0},
        "user": {"type": "object"},
    },
}


def _document() -> dict[str, Any]:
    get_read: dict[str, Any] = {"security": [{"bearer": []}, {"proxy": []}]}
    paths: dict[str, Any] = {
        "/e/{event_key}": {"post": {
            "summary": "Send one event or an array of events",
            "security": [],
            "parameters": [_path("event_key", "an event key (ferryman keys create)")],
            "requestBody": _json_body({"oneOf": [_EVENT, {"type": "array", "items": _EVENT,
                                                         "minItems": 1, "maxItems": 5000}]},
                                      required=True),
            "responses": _answers("the events' ids", 400, 413, 503, schema={
                "type": "object", "required": ["ids", "status"],
                "properties": {"ids": {"type": "array", "items": {"type": "string"}},
                               "status": {"type": "integer"}}}),
        }},
        "/v1/events": {"get": {
            "summary": "Recent events, newest first", **get_read,
            "parameters": [_query("name", "only events of this name"),
                           _query("limit", "how many (1-1000)", {"type": "integer"})],
            "responses": _answers("a list of events", 400),
        }},
        "/v1/events/{event_id}/runs": {"get": {
            "summary": "The runs an event started", **get_read,
            "parameters": [_path("event_id", "event id")],
            "responses": _answers("a list of runs", 400, 404),
        }},
        "/v1/functions": {"get": {
            "summary": "Functions the workers declared", **get_read,
            "responses": _answers("a list of functions"),
        }},
        "/v1/functions/{function_id}": {"get": {
            "summary": "One function", **get_read,
            "parameters": [_path("function_id", "function id")],
            "responses": _answers("a function", 400, 404),
        }},
        "/v1/runs": {"get": {
            "summary": "A page of runs, newest first", **get_read,
            "parameters": [
                _query("function_id", "function id"),
                _query("status", "run status", {"type": "string", "enum": STATUSES}),
                _query("after", "created at or after", _TIME),
                _query("before", "created before", _TIME),
                _query("limit", "page size (1-1000)", {"type": "integer"}),
                _query("cursor", "the cursor of the previous page"),
            ],
            "responses": _answers("a page of runs and the next cursor", 400),
        }},
        "/v1/runs/count": {"get": {
            "summary": "How many runs a filter selects", **get_read,
            "parameters": [
                _query("function_id", "function id"),
                _query("status", "run status", {"type": "string", "enum": STATUSES}),
                _query("after", "created at or after", _TIME),
                _query("before", "created before", _TIME),
                _query("event_id", "runs started by this event"),
                _query("action", "count what cancel or replay would touch"),
            ],
            "responses": _answers("a count", 400),
        }},
        "/v1/runs/{action}": {"post": {
            "summary": "Cancel or replay every run a filter selects",
            "parameters": [{"name": "action", "in": "path", "required": True,
                            "schema": {"type": "string", "enum": ["cancel", "replay"]}}],
            "requestBody": _json_body(_RUN_FILTER, required=True),
            "responses": _answers("the runs changed", 400, 403, 404, 413),
        }},
        "/v1/runs/{run_id}": {"get": {
            "summary": "A run with its steps", **get_read,
            "parameters": [_path("run_id", "run id")],
            "responses": _answers("a run", 400, 404),
        }},
        "/v1/runs/{run_id}/cancel": {"post": {
            "summary": "Cancel a run",
            "parameters": [_path("run_id", "run id")],
            "responses": _answers("the cancelled run", 400, 403, 404, 409),
        }},
        "/v1/runs/{run_id}/replay": {"post": {
            "summary": "Start a new run from a run's event (optionally keeping steps before one)",
            "parameters": [_path("run_id", "run id")],
            "requestBody": _json_body({"type": "object", "additionalProperties": False,
                                       "properties": {"from_step": {"type": "string"}}}),
            "responses": _answers("the new run", 400, 403, 404, 409, 413),
        }},
        "/v1/webhooks": {"get": {
            "summary": "Declared webhooks", **get_read,
            "responses": _answers("a list of webhooks"),
        }},
        "/v1/webhooks/{name}": {"get": {
            "summary": "One webhook", **get_read,
            "parameters": [_path("name", "webhook name")],
            "responses": _answers("a webhook", 400, 404),
        }},
        "/v1/webhooks/{name}/deliveries": {"get": {
            "summary": "A webhook's deliveries, newest first", **get_read,
            "parameters": [_path("name", "webhook name"),
                           _query("limit", "page size", {"type": "integer"}),
                           _query("cursor", "the cursor of the previous page"),
                           _query("status", "delivery status")],
            "responses": _answers("a page of deliveries", 400, 404),
        }},
        "/v1/webhooks/{name}/deliveries/{delivery_id}": {"get": {
            "summary": "One delivery", **get_read,
            "parameters": [_path("name", "webhook name"), _path("delivery_id", "delivery id")],
            "responses": _answers("a delivery", 400, 404),
        }},
        "/v1/webhooks/{name}/deliveries/{delivery_id}/rerun": {"post": {
            "summary": "Re-run a delivery through the webhook's current transform",
            "parameters": [_path("name", "webhook name"), _path("delivery_id", "delivery id")],
            "responses": _answers("the new delivery", 400, 403, 404, 409),
        }},
        "/webhooks/{name}": {"post": {
            "summary": "A third party's callback; its signature is the credential",
            "security": [],
            "parameters": [_path("name", "webhook name")],
            "requestBody": _json_body(_ANY_OBJECT),
            "responses": _answers("the events it became", 400, 404, 413, 415),
        }},
        "/health": {"get": {"summary": "Liveness", "security": [],
                            "responses": _answers("alive")}},
        "/ready": {"get": {"summary": "Readiness (PostgreSQL and NATS reachable)",
                           "security": [], "responses": _answers("ready", 503)}},
        "/metrics": {"get": {
            "summary": "Prometheus metrics (public unless FERRYMAN_METRICS_PUBLIC=false)",
            "security": [], "responses": {"200": {"description": "Prometheus text format",
                                                  "content": {"text/plain": {}}}},
        }},
        "/openapi.json": {"get": {"summary": "This document", "security": [],
                                  "responses": _answers("OpenAPI 3.1")}},
    }  # fmt: skip
    for item in paths.values():
        for operation in item.values():
            operation.setdefault("security", [{"bearer": []}, {"proxy": []}])
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Ferryman gateway",
            "version": "1",
            "description": "Events in, runs out. Read calls need a token with the read "
            "role, others the operate role (docs/security.md).",
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
                }
            },
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "ferryman tokens create NAME --role read|operate",
                },
                "proxy": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Forwarded-Email",
                    "description": "set by a trusted SSO proxy (the header is configurable)",
                },
            },
        },
    }


DOCUMENT = _document()


async def openapi_json(request: Request) -> Response:
    return JSONResponse(DOCUMENT)
