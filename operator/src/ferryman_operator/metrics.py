"""The operator's Prometheus metrics (prefix ``ferryman_operator_``), on its own registry.

Served on ``FERRYMAN_METRICS_PORT`` (9090 in the chart) next to kopf's liveness endpoint.
Labels are bounded by the custom resources that exist: ``kind`` (DurableFunction,
WorkerPool), ``result`` (ok, error), ``pool`` and ``reason`` (the scaling decisions of
``scaling.py``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)

REGISTRY = CollectorRegistry(auto_describe=True)
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_collector)

RECONCILES = Counter(
    "ferryman_operator_reconciles_total",
    "Reconciliations of a custom resource, by kind and result (ok, error)",
    ["kind", "result"],
    registry=REGISTRY,
)
RECONCILE_SECONDS = Histogram(
    "ferryman_operator_reconcile_seconds",
    "Duration of one reconciliation",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
SCALING_DECISIONS = Counter(
    "ferryman_operator_scaling_decisions_total",
    "Scaling decisions for a WorkerPool, by reason (ScaledUp, ScaledDown, Steady, ...)",
    ["pool", "reason"],
    registry=REGISTRY,
)
POOL_REPLICAS = Gauge(
    "ferryman_operator_pool_desired_replicas",
    "Replicas the operator last decided for a WorkerPool",
    ["pool"],
    registry=REGISTRY,
)
POOL_BACKLOG = Gauge(
    "ferryman_operator_pool_backlog",
    "Jobs pending or in flight for a WorkerPool's functions, as the operator last read them",
    ["pool"],
    registry=REGISTRY,
)


@contextmanager
def reconciling(kind: str) -> Iterator[None]:
    """Count and time one reconciliation; an exception counts as an error and propagates."""
    started = time.perf_counter()
    try:
        yield
    except BaseException:
        RECONCILES.labels(kind, "error").inc()
        raise
    else:
        RECONCILES.labels(kind, "ok").inc()
    finally:
        RECONCILE_SECONDS.labels(kind).observe(time.perf_counter() - started)


def serve(port: int, host: str) -> None:
    """Serve ``/metrics`` from a thread (0: off)."""
    if port:
        start_http_server(port, host, registry=REGISTRY)
