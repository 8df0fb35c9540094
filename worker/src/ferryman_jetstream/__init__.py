"""The JetStream topology Ferryman runs on: streams, subjects, consumers and schedules.

This is the one module the worker (data plane) and the operator (control plane) share.
It knows how names map to subjects and what consumers and schedules a function needs,
and it can make JetStream match that description. It knows nothing of PostgreSQL,
Kubernetes or the user's code.
"""

from ferryman_jetstream.consumers import (
    Backlog,
    FunctionTopology,
    backlog,
    backlog_counts,
    reconcile_function,
    remove_function,
)
from ferryman_jetstream.schedules import CronSchedule, cancel_timer, publish_at, publish_cron
from ferryman_jetstream.streams import ensure_streams
from ferryman_jetstream.subjects import (
    EVENTS_STREAM,
    TIMERS_STREAM,
    WORK_STREAM,
    InvalidEventName,
    event_subject,
    validate_event_name,
)

__all__ = [
    "EVENTS_STREAM",
    "TIMERS_STREAM",
    "WORK_STREAM",
    "Backlog",
    "CronSchedule",
    "FunctionTopology",
    "InvalidEventName",
    "backlog",
    "backlog_counts",
    "cancel_timer",
    "ensure_streams",
    "event_subject",
    "publish_at",
    "publish_cron",
    "reconcile_function",
    "remove_function",
    "validate_event_name",
]
