"""Prometheus metrics (prefix ``ferryman_``): each process exports only what it owns.

Two registries, one per kind of process in this package (the operator has its own in
``ferryman_operator.metrics``):

- ``WORKER``: what a worker does to runs — starts, passes, steps, endings it records,
  timers it fires, the matcher, checkpoint commits, store errors. Served on
  ``FERRYMAN_METRICS_PORT``.
- ``GATEWAY``: event ingest and API actions (cancel, replay), plus the engine-wide gauges
  (runs by state, JetStream backlog, overdue timers) that one gateway replica computes
  for everyone (``state_gauges.py``). Served on the gateway's ``/metrics``.

A new metric names its registry explicitly (``registry=WORKER`` or ``GATEWAY``); nothing
goes to prometheus_client's global default registry, so no process exports look-alike
zeros of another's families. ``docs/metrics.md`` lists every family; a test keeps the
two in step. Labels are bounded: ``function`` (functions deployed), ``status``/``state``
(enums), ``step`` (capped per function by :func:`step_label`).
"""

from __future__ import annotations

import re
import threading

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

# ``*_created`` series double every counter for no use on a dashboard.
disable_created_metrics()  # type: ignore[no-untyped-call]

WORKER = CollectorRegistry(auto_describe=True)
GATEWAY = CollectorRegistry(auto_describe=True)

# Process metrics (CPU, memory, fds) are per process: both registries carry them, and
# ``ferryman dev`` (one port, two processes) keeps the gateway's (see devmetrics.py).
for _registry in (WORKER, GATEWAY):
    for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        _registry.register(_collector)
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.unregister(_collector)

# Latency buckets from a millisecond to two minutes; run durations reach days (sleeps).
FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120)
LONG = (0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800, 3600, 6 * 3600, 86400, 7 * 86400)
SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

# -- worker ----------------------------------------------------------------------------

RUNS_STARTED = Counter("ferryman_runs_started_total", "Runs created", ["function"], registry=WORKER)
RUNS_FINISHED = Counter(
    "ferryman_runs_finished_total",
    "Runs that reached a terminal status (COMPLETED, FAILED, CANCELLED)",
    ["function", "status"],
    registry=WORKER,
)
RUN_DURATION = Histogram(
    "ferryman_run_duration_seconds",
    "From a run's creation to its end, sleeps and waits included",
    ["function", "status"],
    buckets=LONG,
    registry=WORKER,
)
RUN_START_DELAY = Histogram(
    "ferryman_run_start_delay_seconds",
    "From an event's arrival at the gateway to the first pass of the run it started",
    ["function"],
    buckets=FAST,
    registry=WORKER,
)
RUN_PASSES = Counter(
    "ferryman_run_passes_total", "Passes of the replay engine over a run", ["function"],
    registry=WORKER,
)  # fmt: skip
STEPS_EXECUTED = Counter(
    "ferryman_steps_executed_total", "New steps executed", ["function"], registry=WORKER
)
RUN_PASS_SECONDS = Histogram(
    "ferryman_run_pass_seconds",
    "Duration of one pass over a run",
    ["function"],
    buckets=FAST,
    registry=WORKER,
)
STEP_DURATION = Histogram(
    "ferryman_step_duration_seconds",
    "Duration of one attempt of a step.run, whatever its outcome",
    ["function", "step"],
    buckets=FAST,
    registry=WORKER,
)
STEP_ATTEMPTS = Counter(
    "ferryman_step_attempts_total",
    "Attempts of step.run by outcome: completed, retrying (will run again) or failed (final)",
    ["function", "outcome"],
    registry=WORKER,
)
RUN_RETRIES = Counter(
    "ferryman_run_retries_total",
    "Whole-run retries (a failure outside any step)",
    ["function"],
    registry=WORKER,
)
ACTIVE_RUNS = Gauge(
    "ferryman_worker_active_runs", "Runs this worker is advancing now", registry=WORKER
)
RUNS_SKIPPED = Counter(
    "ferryman_runs_skipped_total",
    "Events that started no run, by reason",
    ["function", "reason"],
    registry=WORKER,
)
TIMER_LATENESS = Histogram(
    "ferryman_timer_lateness_seconds",
    "How late a sleep, retry or wait timeout fired, against the time it was due",
    ["function"],
    buckets=FAST,
    registry=WORKER,
)
TIMERS_REARMED = Counter(
    "ferryman_timers_rearmed_total", "Timers re-armed by the repair sweep", registry=WORKER
)
RUNS_REQUEUED = Counter(
    "ferryman_runs_requeued_total", "Stalled runs re-queued by the repair sweep", registry=WORKER
)
WAITS_RESOLVED = Counter(
    "ferryman_waits_resolved_total", "Waits resolved by a matching event", registry=WORKER
)
EVENTS_UNWATCHED = Counter(
    "ferryman_matcher_events_unwatched_total",
    "Events the matcher acked unread: nobody waits for their name",
    registry=WORKER,
)
MATCHER_LAG = Histogram(
    "ferryman_matcher_lag_seconds",
    "From an event's arrival at the gateway to the matcher handling it",
    buckets=FAST,
    registry=WORKER,
)
CHECKPOINT_SECONDS = Histogram(
    "ferryman_checkpoint_commit_seconds",
    "Duration of one group commit, by kind (steps, releases, leases, finishes, events)",
    ["kind"],
    buckets=FAST,
    registry=WORKER,
)
CHECKPOINT_BATCH = Histogram(
    "ferryman_checkpoint_batch_size",
    "Rows written by one group commit, by kind",
    ["kind"],
    buckets=SIZES,
    registry=WORKER,
)
STORE_ERRORS = Counter(
    "ferryman_store_errors_total",
    "Failed calls to PostgreSQL or NATS, by system (postgresql, nats)",
    ["system"],
    registry=WORKER,
)

# Flow control (the admission stage), per function and rule.
FLOW_SKIPPED = Counter(
    "ferryman_flow_skipped_total",
    "Events flow control started no run for, and runs its timeouts cancelled",
    ["function", "rule"],
    registry=WORKER,
)
FLOW_HELD = Counter(
    "ferryman_flow_held_total",
    "Times flow control held a run back (throttle, debounce, batch, concurrency)",
    ["function", "rule"],
    registry=WORKER,
)
FLOW_WAIT_SECONDS = Histogram(
    "ferryman_flow_wait_seconds",
    "From a flow-controlled run's creation to its first start",
    ["function"],
    buckets=LONG,
    registry=WORKER,
)

# -- gateway ---------------------------------------------------------------------------

EVENTS_RECEIVED = Counter(
    "ferryman_events_received_total", "Events accepted by the gateway", registry=GATEWAY
)
EVENTS_REJECTED = Counter(
    "ferryman_events_rejected_total",
    "Event requests refused, by HTTP status",
    ["code"],
    registry=GATEWAY,
)
GATEWAY_STORE_ERRORS = Counter(
    "ferryman_gateway_store_errors_total",
    "Event requests the gateway could not store or publish (answered 503)",
    registry=GATEWAY,
)
# API cancellations end runs in the gateway; the worker counts the endings it records
# (cancel_on included). Same families, so a sum over targets has every ending.
GATEWAY_RUNS_FINISHED = Counter(
    "ferryman_runs_finished_total",
    RUNS_FINISHED._documentation,
    ["function", "status"],
    registry=GATEWAY,
)
GATEWAY_RUN_DURATION = Histogram(
    "ferryman_run_duration_seconds",
    RUN_DURATION._documentation,
    ["function", "status"],
    buckets=LONG,
    registry=GATEWAY,
)
RUNS_REPLAYED = Counter(
    "ferryman_runs_replayed_total", "Replays started through the API", registry=GATEWAY
)


def hosting(function_id: str) -> None:
    """Export a hosted function's counters and histograms at 0 before anything happens:
    ``increase()`` misses a series' first value, so a function whose first run fails
    would never count as failing, and the dashboard lists functions that have not run."""
    RUNS_STARTED.labels(function_id)
    for status in ("COMPLETED", "FAILED", "CANCELLED"):
        RUNS_FINISHED.labels(function_id, status)
    for outcome in ("completed", "retrying", "failed"):
        STEP_ATTEMPTS.labels(function_id, outcome)
    RUN_RETRIES.labels(function_id)
    # Histograms too: rate() over buckets that first appear already counting is 0, so a
    # burst of runs ending within one scrape would never reach a latency panel.
    for status in ("COMPLETED", "FAILED", "CANCELLED"):
        RUN_DURATION.labels(function_id, status)
    for histogram in (RUN_START_DELAY, RUN_PASS_SECONDS, TIMER_LATENESS):
        histogram.labels(function_id)
    for system in ("postgresql", "nats"):
        STORE_ERRORS.labels(system)


# Webhooks, per webhook (bounded: names that are not webhooks count under "(unknown)").
WEBHOOK_RECEIVED = Counter(
    "ferryman_webhook_received_total",
    "Deliveries posted to a webhook",
    ["webhook"],
    registry=GATEWAY,
)
WEBHOOK_REJECTED = Counter(
    "ferryman_webhook_rejected_total",
    "Webhook deliveries refused, by reason (bad_signature, stale_timestamp, too_large, ...)",
    ["webhook", "reason"],
    registry=GATEWAY,
)
WEBHOOK_TRANSFORM_ERRORS = Counter(
    "ferryman_webhook_transform_errors_total",
    "Deliveries whose transform failed (kept, no event)",
    ["webhook"],
    registry=GATEWAY,
)
WEBHOOK_EVENTS = Counter(
    "ferryman_webhook_events_total",
    "Events made by webhook deliveries",
    ["webhook"],
    registry=GATEWAY,
)

# -- bounded step labels ---------------------------------------------------------------

MAX_STEP_LABELS = 50
OTHER_STEP = "_other"
_COUNTER_SUFFIX = re.compile(r":\d+$")
_step_labels: dict[str, set[str]] = {}
_step_lock = threading.Lock()


def step_label(function_id: str, step_id: str) -> str:
    """``step_id`` without its repeat counter (``fetch:3`` -> ``fetch``), or ``_other``
    once the function has ``MAX_STEP_LABELS`` distinct ones: ids built from data (one per
    item) must not grow the series without bound."""
    base = _COUNTER_SUFFIX.sub("", step_id)
    with _step_lock:
        seen = _step_labels.setdefault(function_id, set())
        if base in seen:
            return base
        if len(seen) >= MAX_STEP_LABELS:
            return OTHER_STEP
        seen.add(base)
        return base
