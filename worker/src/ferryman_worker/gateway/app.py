"""The gateway's HTTP app (Starlette), shaped after Inngest's REST API.

| call | answer |
|---|---|
| ``POST /e/{event_key}`` | ``{"ids": [...], "status": 200}``; 4xx ``{"error": ...}`` |
| ``GET /v1/events?name=`` | recent events |
| ``GET /v1/events/{id}/runs`` | the runs an event started |
| ``GET /v1/runs/{id}`` | a run with its steps |
| ``GET /v1/runs?function_id=&status=&after=&before=&limit=&cursor=`` | a page of runs |
| ``POST /v1/runs/{id}/cancel`` ``/v1/runs/{id}/replay`` | the changed or new run |
| ``POST /v1/runs/cancel`` ``/v1/runs/replay`` (a filter) | ``{"count", "run_ids"}`` |
| ``GET /health`` ``/ready`` ``/metrics`` | liveness, readiness, Prometheus text |
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import psycopg
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ferryman_jetstream import ensure_streams
from ferryman_worker.common import limits, metrics, tracing
from ferryman_worker.common.settings import Settings
from ferryman_worker.gateway import console
from ferryman_worker.gateway.auth import (
    EVENT_KEY,
    PUBLIC,
    READ,
    Authenticate,
    Authority,
    needs,
    public,
)
from ferryman_worker.gateway.devmetrics import DevMetrics
from ferryman_worker.gateway.engine_gauges import EngineGauges
from ferryman_worker.gateway.functions_api import FunctionsApi
from ferryman_worker.gateway.guard import Guard
from ferryman_worker.gateway.openapi import openapi_json
from ferryman_worker.gateway.runs_api import RunsApi
from ferryman_worker.gateway.webhooks import webhook_routes
from ferryman_worker.storage import queries
from ferryman_worker.storage.cancelling import cancel_runs
from ferryman_worker.storage.events import BadEvent, EventBus, EventLimits, parse_events
from ferryman_worker.storage.replaying import ReplayError, replay_run, replay_runs
from ferryman_worker.transport import natsconn

log = logging.getLogger("ferryman.gateway")

# Cancellations through the API are the gateway's to count.
_API_METRICS: dict[str, Any] = {
    "finished": metrics.GATEWAY_RUNS_FINISHED,
    "duration": metrics.GATEWAY_RUN_DURATION,
}


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status)


class Gateway:
    """Connections and handlers; ``create_app`` wires them into Starlette."""

    def __init__(self, settings: Settings) -> None:
        settings.require("database_url", "nats_url")
        self.settings = settings
        self.limits = EventLimits(max_event_bytes=settings.max_event_bytes)
        # A full batch of events at the size limit, plus JSON punctuation.
        self.max_body = self.limits.max_event_bytes * 2 + self.limits.max_events * 1024
        self.authority = Authority(settings)
        # A further readiness check (``ferryman dev``: its worker): a problem, or None.
        self.extra_readiness: Callable[[], str | None] | None = None

    async def open(self) -> None:
        self.pool = AsyncConnectionPool(
            self.settings.database_url,
            min_size=2,
            max_size=20,
            kwargs={"autocommit": True},
            open=False,
        )
        await self.pool.open(wait=True, timeout=30)
        self.authority.pool = self.pool
        self.nc = await natsconn.connect(self.settings.nats_url, "ferryman-gateway", log)
        self.js = self.nc.jetstream(timeout=10)
        # Events sent before any worker started must have a stream to land in.
        await ensure_streams(self.js)
        self.bus = EventBus(self.pool, self.js, self.nc)
        self.gauges = EngineGauges(self.settings.database_url)
        # One exporter per process: a second gateway opened in the same process (tests,
        # embedding) leaves the engine gauges to the first.
        self.exports_gauges = True
        try:
            metrics.GATEWAY.register(self.gauges)
        except ValueError:
            self.exports_gauges = False
        self.gauges_task = asyncio.create_task(self.gauges.run(self.pool, self.js))

    async def close(self) -> None:
        self.gauges.stopping.set()
        self.gauges_task.cancel()
        await asyncio.wait({self.gauges_task}, timeout=5)
        await self.gauges.close()
        if self.exports_gauges:
            metrics.GATEWAY.unregister(self.gauges)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.nc.drain(), 5)
        await self.pool.close()

    async def send_events(self, request: Request) -> Response:
        # The event key was checked by the auth middleware (the route needs EVENT_KEY).
        try:
            payload = limits.load_json(await limits.read_body(request, self.max_body))
            events = parse_events(payload, self.limits)
        except limits.BadRequest as exc:
            metrics.EVENTS_REJECTED.labels(str(exc.status)).inc()
            raise
        except BadEvent as exc:
            metrics.EVENTS_REJECTED.labels("400").inc()
            return error(400, str(exc))
        try:
            # A W3C traceparent header makes the runs children of the caller's span.
            traceparent = request.headers.get(tracing.TRACEPARENT)
            await self.bus.publish(
                events, await self.bus.store(events), tracing.valid_traceparent(traceparent)
            )
        except psycopg.DataError as exc:
            # Checked above, so this is a value PostgreSQL refuses that we did not foresee:
            # still the client's input, and retrying cannot help.
            metrics.EVENTS_REJECTED.labels("400").inc()
            return error(400, f"PostgreSQL refused these events: {exc}")
        except Exception as exc:
            metrics.GATEWAY_STORE_ERRORS.inc()
            return error(
                503,
                f"could not accept events right now ({type(exc).__name__}); "
                "retry the same request: event ids make it safe",
            )
        metrics.EVENTS_RECEIVED.inc(len(events))
        return JSONResponse({"ids": [e.id for e in events], "status": 200})

    async def get_run(self, request: Request) -> Response:
        run = await queries.get_run(self.pool, request.path_params["run_id"])
        if run is None:
            return error(404, f"no run {request.path_params['run_id']!r}")
        return JSONResponse({"data": run})

    async def list_runs(self, request: Request) -> Response:
        q = request.query_params
        try:
            status = q.get("status")
            if status and status not in queries.STATUSES:
                raise ValueError(f"status must be one of {', '.join(queries.STATUSES)}")
            limit = int(q.get("limit", "50"))
            if not 1 <= limit <= 1000:
                raise ValueError("limit must be between 1 and 1000")
            runs, cursor = await queries.list_runs(
                self.pool,
                function_id=limits.text(q.get("function_id"), "function_id"),
                status=status,
                after=_time(q.get("after"), "after"),
                before=_time(q.get("before"), "before"),
                limit=limit,
                cursor=limits.text(q.get("cursor"), "cursor", max_length=2048),
                event_id=limits.text(q.get("event_id"), "event_id"),
            )
        except ValueError as exc:
            return error(400, str(exc))
        return JSONResponse({"data": runs, "cursor": cursor})

    async def event_runs(self, request: Request) -> Response:
        runs = await queries.event_runs(self.pool, request.path_params["event_id"])
        if runs is None:
            return error(404, f"no event {request.path_params['event_id']!r}")
        skipped = await queries.event_skips(self.pool, request.path_params["event_id"])
        return JSONResponse({"data": runs, "skipped": skipped})

    async def list_events(self, request: Request) -> Response:
        try:
            limit = int(request.query_params.get("limit", "50"))
        except ValueError:
            return error(400, "limit must be a number")
        name = limits.text(request.query_params.get("name"), "name")
        events = await queries.list_events(self.pool, name, max(1, min(limit, 1000)))
        return JSONResponse({"data": events})

    async def cancel_run(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        run = await queries.get_run(self.pool, run_id)
        if run is None:
            return error(404, f"no run {run_id!r}")
        if run["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            return error(409, f"run {run_id} is already {run['status']}; nothing to cancel")
        await cancel_runs(
            self.pool, self.bus, run_ids=[run_id], reason="cancelled by API", **_API_METRICS
        )
        return JSONResponse({"data": await queries.get_run(self.pool, run_id)})

    async def replay_run(self, request: Request) -> Response:
        body = await limits.json_object(request)
        unknown = set(body) - {"from_step"}
        if unknown:
            return error(400, f"unknown field(s) {sorted(unknown)}; the only one is from_step")
        from_step = limits.text(body.get("from_step"), "from_step")
        try:
            new_run = await replay_run(self.pool, self.js, request.path_params["run_id"], from_step)
        except ReplayError as exc:
            status = 404 if str(exc).startswith("no run") else 409
            return error(status, str(exc))
        return JSONResponse({"data": await queries.get_run(self.pool, new_run)})

    async def bulk(self, request: Request) -> Response:
        if request.path_params["action"] not in ("cancel", "replay"):
            return error(404, "POST /v1/runs/cancel or /v1/runs/replay with a filter")
        body = await limits.json_object(request)
        unknown = set(body) - {"function_id", "status", "after", "before"}
        if unknown:
            return error(
                400, f"unknown filter(s) {sorted(unknown)}; use function_id, status, after, before"
            )
        if not body.get("function_id"):
            return error(400, "bulk operations need at least function_id in the filter")
        try:
            filters: dict[str, Any] = {
                "function_id": limits.text(body["function_id"], "function_id"),
                "status": limits.text(body.get("status"), "status"),
                "after": _time(limits.text(body.get("after"), "after"), "after"),
                "before": _time(limits.text(body.get("before"), "before"), "before"),
            }  # fmt: skip
            if filters["status"] and filters["status"] not in queries.STATUSES:
                raise ValueError(f"status must be one of {', '.join(queries.STATUSES)}")
            if request.path_params["action"] == "cancel":
                ids = await cancel_runs(
                    self.pool, self.bus, reason="bulk cancel", **filters, **_API_METRICS
                )
            else:
                ids = await replay_runs(self.pool, self.js, **filters)
        except ValueError as exc:
            return error(400, str(exc))
        return JSONResponse({"data": {"count": len(ids), "run_ids": ids}})

    async def ready(self, request: Request) -> Response:
        problems = []
        try:
            async with self.pool.connection(timeout=2) as conn:
                await conn.execute("SELECT 1")
        except Exception as exc:
            problems.append(f"postgres: {exc}")
        if not self.nc.is_connected:
            problems.append("nats: not connected")
        if self.extra_readiness and (problem := self.extra_readiness()):
            problems.append(problem)
        if problems:
            return JSONResponse({"ready": False, "problems": problems}, status_code=503)
        return JSONResponse({"ready": True})


def _time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} must be an ISO 8601 time, like 2026-01-31T12:00:00Z") from None


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def metrics_endpoint(worker_metrics: list[str] | None) -> Any:
    """``/metrics``: the gateway's own registry, or in ``ferryman dev`` (``worker_metrics``:
    the worker's loopback URLs) everything on this one port."""
    if not worker_metrics:

        async def own(request: Request) -> Response:
            return Response(generate_latest(metrics.GATEWAY), media_type=CONTENT_TYPE_LATEST)

        return own
    dev = DevMetrics(metrics.GATEWAY, worker_metrics)

    async def merged(request: Request) -> Response:
        return Response(await dev.exposition(), media_type=CONTENT_TYPE_LATEST)

    return merged


def create_app(gateway: Gateway, worker_metrics: list[str] | None = None) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.open()
        yield
        await gateway.close()

    functions_api, runs_api = FunctionsApi(gateway), RunsApi(gateway)
    routes: list[Any] = [
        needs(Route("/e/{event_key}", gateway.send_events, methods=["POST"]), EVENT_KEY),
        Route("/v1/events", gateway.list_events),
        Route("/v1/events/{event_id:path}/runs", gateway.event_runs),
        Route("/v1/functions", functions_api.list),
        Route("/v1/functions/{function_id}", functions_api.get),
        Route("/v1/runs", gateway.list_runs),
        Route("/v1/runs/count", runs_api.count),
        Route("/v1/runs/{action:str}", gateway.bulk, methods=["POST"]),
        Route("/v1/runs/{run_id}", gateway.get_run),
        Route("/v1/runs/{run_id}/cancel", gateway.cancel_run, methods=["POST"]),
        Route("/v1/runs/{run_id}/replay", gateway.replay_run, methods=["POST"]),
        public(Route("/openapi.json", openapi_json)),
        public(Route("/health", health)),
        public(Route("/ready", gateway.ready)),
        needs(
            Route("/metrics", metrics_endpoint(worker_metrics)),
            PUBLIC if gateway.settings.metrics_public else READ,
        ),
        *webhook_routes(gateway),
        *console.routes(),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        # Guard outermost: it also contains a crash in the auth check.
        middleware=[
            Middleware(Guard),
            Middleware(Authenticate, authority=gateway.authority),
        ],
        exception_handlers={limits.BadRequest: _bad_request},
    )


async def _bad_request(request: Request, exc: Exception) -> Response:
    status = exc.status if isinstance(exc, limits.BadRequest) else 400
    # A refused body may be partly unread: close rather than parse the rest as a request.
    headers = {"Connection": "close"} if status == 413 else None
    return JSONResponse({"error": str(exc), "status": status}, status, headers=headers)
