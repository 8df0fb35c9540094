"""Prometheus metrics (prefix ``ferryman_``), shared by the worker and the gateway."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RUNS_STARTED = Counter("ferryman_runs_started_total", "Runs created", ["function"])
RUNS_FINISHED = Counter("ferryman_runs_finished_total", "Runs ended", ["function", "status"])
RUN_PASSES = Counter("ferryman_run_passes_total", "Passes of the replay engine", ["function"])
STEPS_EXECUTED = Counter("ferryman_steps_executed_total", "New steps executed", ["function"])
RUN_PASS_SECONDS = Histogram(
    "ferryman_run_pass_seconds",
    "Duration of one pass over a run",
    ["function"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120),
)
EVENTS_RECEIVED = Counter("ferryman_events_received_total", "Events accepted by the gateway")
EVENTS_REJECTED = Counter("ferryman_events_rejected_total", "Event requests refused (4xx)")
RUNS_SKIPPED = Counter("ferryman_runs_skipped_total", "Events that started no run", ["reason"])
TIMERS_REARMED = Counter("ferryman_timers_rearmed_total", "Timers re-armed by the repair sweep")
RUNS_REQUEUED = Counter("ferryman_runs_requeued_total", "Stalled runs re-queued by the sweep")
ACTIVE_RUNS = Gauge("ferryman_worker_active_runs", "Runs this worker is advancing now")
WAITS_RESOLVED = Counter("ferryman_waits_resolved_total", "Waits resolved by a matching event")
RUNS_CANCELLED = Counter("ferryman_runs_cancelled_total", "Runs cancelled")
RUNS_REPLAYED = Counter("ferryman_runs_replayed_total", "Replays started")
EVENTS_UNWATCHED = Counter(
    "ferryman_matcher_events_unwatched_total", "Events the matcher acked unread: nobody waits"
)

# Flow control (the admission stage), per function and rule.
FLOW_SKIPPED = Counter(
    "ferryman_flow_skipped_total",
    "Events flow control started no run for, and runs its timeouts cancelled",
    ["function", "rule"],
)
FLOW_HELD = Counter(
    "ferryman_flow_held_total",
    "Times flow control held a run back (throttle, debounce, batch, concurrency)",
    ["function", "rule"],
)
FLOW_WAIT_SECONDS = Histogram(
    "ferryman_flow_wait_seconds",
    "From a flow-controlled run's creation to its first start",
    ["function"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600),
)
