"""The consumers a function needs, and making JetStream hold exactly those.

Each function gets up to three durable pull consumers:

- ``trigger-<fn>`` on EVENTS, filtered on the event names of its triggers;
- ``work-<fn>`` on WORK, the jobs that advance its runs;
- ``timers-<fn>`` on TIMERS, its fired sleeps, retries and cron ticks.

The worker calls :func:`reconcile_function` in dev mode; the operator calls it for each
DurableFunction. Both end in the same state, so they can take turns.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from ferryman_jetstream.schedules import CronSchedule, publish_cron
from ferryman_jetstream.subjects import (
    EVENTS_STREAM,
    TIMERS_STREAM,
    WORK_STREAM,
    cron_tick_subject,
    event_subject,
    timer_fired_subject,
    timers_consumer,
    trigger_consumer,
    work_consumer,
    work_subject,
)

DEFAULT_MAX_ACK_PENDING = 1000
# A trigger consumer created late starts this far back at most: within the 24 h that run
# keys dedupe, so re-creating a consumer never starts a second run for an old event.
MAX_LOOKBACK = timedelta(hours=1)


@dataclass(frozen=True)
class FunctionTopology:
    """What JetStream must hold for one function."""

    function_id: str
    events: tuple[str, ...] = ()
    crons: tuple[CronSchedule, ...] = ()
    max_ack_pending: int = DEFAULT_MAX_ACK_PENDING
    ack_wait_seconds: float = 30.0
    max_deliver: int = -1
    # When the function was declared: its trigger consumer delivers the events received
    # since then, however late the consumer is created (None: only events from now on).
    declared_at: datetime | None = field(default=None, compare=False)
    names: dict[str, str] = field(default_factory=dict, compare=False)

    def trigger_start(self) -> dict[str, object]:
        if self.declared_at is None:
            return {"deliver_policy": DeliverPolicy.NEW}
        since = max(self.declared_at, datetime.now(UTC) - MAX_LOOKBACK)
        return {"deliver_policy": DeliverPolicy.BY_START_TIME, "opt_start_time": since}

    def consumer_configs(self) -> list[tuple[str, ConsumerConfig]]:
        fn = self.function_id
        common = {
            "ack_policy": AckPolicy.EXPLICIT,
            "ack_wait": self.ack_wait_seconds,
            "max_deliver": self.max_deliver,
            "max_ack_pending": self.max_ack_pending,
        }
        configs: list[tuple[str, ConsumerConfig]] = []
        if self.events:
            configs.append(
                (
                    EVENTS_STREAM,
                    ConsumerConfig(
                        durable_name=trigger_consumer(fn),
                        filter_subjects=[event_subject(e) for e in sorted(set(self.events))],
                        **self.trigger_start(),  # type: ignore[arg-type]
                        **common,  # type: ignore[arg-type]
                    ),
                )
            )
        configs.append(
            (
                WORK_STREAM,
                ConsumerConfig(
                    durable_name=work_consumer(fn),
                    filter_subject=work_subject(fn),
                    **common,  # type: ignore[arg-type]
                ),
            )
        )
        configs.append(
            (
                TIMERS_STREAM,
                ConsumerConfig(
                    durable_name=timers_consumer(fn),
                    filter_subjects=[timer_fired_subject(fn), cron_tick_subject(fn)],
                    deliver_policy=DeliverPolicy.NEW,
                    **common,  # type: ignore[arg-type]
                ),
            )
        )
        return configs


def _differs(have: ConsumerConfig, want: ConsumerConfig) -> bool:
    def subjects(c: ConsumerConfig) -> list[str]:
        return sorted(c.filter_subjects or ([c.filter_subject] if c.filter_subject else []))

    return (
        subjects(have) != subjects(want)
        or have.max_ack_pending != want.max_ack_pending
        or (have.ack_wait or 0) != (want.ack_wait or 0)
        or (have.max_deliver or -1) != (want.max_deliver or -1)
    )


async def reconcile_function(
    js: JetStreamContext, topology: FunctionTopology, *, only_if_changed: bool = False
) -> list[str]:
    """Create or update the function's consumers and cron schedules; return what changed.

    ``only_if_changed`` leaves cron definitions JetStream already holds as they are (for
    periodic reconcilers); consumers are only ever written when they differ."""
    changed: list[str] = []
    wanted = topology.consumer_configs()
    for stream, config in wanted:
        name = config.durable_name or ""
        try:
            info = await js.consumer_info(stream, name)
        except NotFoundError:
            await js.add_consumer(stream, config)
            changed.append(f"created consumer {name}")
            continue
        if _differs(info.config, config):
            # Where a consumer starts cannot change; keep the existing one.
            config.deliver_policy = info.config.deliver_policy
            config.opt_start_time = info.config.opt_start_time
            await js.add_consumer(stream, config)
            changed.append(f"updated consumer {name}")
    if not topology.events:
        try:
            await js.delete_consumer(EVENTS_STREAM, trigger_consumer(topology.function_id))
            changed.append(f"deleted consumer {trigger_consumer(topology.function_id)}")
        except NotFoundError:
            pass
    await publish_cron(
        js, topology.function_id, list(topology.crons), only_if_changed=only_if_changed
    )
    return changed


async def remove_function(js: JetStreamContext, function_id: str) -> None:
    """Delete the function's consumers and cron schedules (its pending jobs stay in WORK)."""
    for stream, name in (
        (EVENTS_STREAM, trigger_consumer(function_id)),
        (WORK_STREAM, work_consumer(function_id)),
        (TIMERS_STREAM, timers_consumer(function_id)),
    ):
        with contextlib.suppress(NotFoundError):
            await js.delete_consumer(stream, name)
    await publish_cron(js, function_id, [])


@dataclass(frozen=True)
class Backlog:
    """Jobs of one function: waiting for a worker (pending) and held by one (in flight)."""

    pending: int = 0
    in_flight: int = 0

    @property
    def total(self) -> int:
        return self.pending + self.in_flight


async def backlog_counts(js: JetStreamContext, function_id: str) -> Backlog:
    """Pending and ack-pending jobs over the function's consumers (missing ones count 0)."""
    pending = in_flight = 0
    for stream, name in (
        (EVENTS_STREAM, trigger_consumer(function_id)),
        (WORK_STREAM, work_consumer(function_id)),
        (TIMERS_STREAM, timers_consumer(function_id)),
    ):
        try:
            info = await js.consumer_info(stream, name)
        except NotFoundError:
            continue
        pending += int(info.num_pending or 0)
        in_flight += int(info.num_ack_pending or 0)
    return Backlog(pending=pending, in_flight=in_flight)


async def backlog(js: JetStreamContext, function_id: str) -> int:
    """Work waiting for or held by workers of this function: pending plus ack-pending."""
    return (await backlog_counts(js, function_id)).total
