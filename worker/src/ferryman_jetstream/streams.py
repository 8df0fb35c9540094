"""The three streams: EVENTS (every event), WORK (run jobs), TIMERS (schedules, firings)."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

from ferryman_jetstream.subjects import (
    EVENTS_PREFIX,
    EVENTS_STREAM,
    MATCHER_CONSUMER,
    TIMERS_PREFIX,
    TIMERS_STREAM,
    WORK_PREFIX,
    WORK_STREAM,
)

DAY = 24 * 3600.0


def stream_configs(replicas: int = 1) -> list[StreamConfig]:
    """What the streams must look like. Postgres holds the truth, so EVENTS keeps a week
    for replay by consumers that were down, and the others only what is still pending."""
    return [
        StreamConfig(
            name=EVENTS_STREAM,
            subjects=[f"{EVENTS_PREFIX}.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=7 * DAY,
            duplicate_window=120.0,
            num_replicas=replicas,
        ),
        StreamConfig(
            name=WORK_STREAM,
            subjects=[f"{WORK_PREFIX}.>"],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            num_replicas=replicas,
        ),
        StreamConfig(
            name=TIMERS_STREAM,
            subjects=[f"{TIMERS_PREFIX}.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            num_replicas=replicas,
            allow_msg_schedules=True,
            allow_msg_ttl=True,
            allow_rollup_hdrs=True,
            max_age=400 * DAY,
        ),
    ]


def matcher_config() -> ConsumerConfig:
    """The matcher sees every event from the moment it exists."""
    return ConsumerConfig(
        durable_name=MATCHER_CONSUMER,
        filter_subject=f"{EVENTS_PREFIX}.>",
        deliver_policy=DeliverPolicy.NEW,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=30.0,
        max_ack_pending=20_000,
    )


async def ensure_streams(js: JetStreamContext, replicas: int = 1) -> None:
    """Create the streams and the matcher consumer, or bring them to the wanted state."""
    for config in stream_configs(replicas):
        try:
            await js.stream_info(config.name or "")
        except NotFoundError:
            await js.add_stream(config)
        else:
            await js.update_stream(config)
    try:
        await js.consumer_info(EVENTS_STREAM, MATCHER_CONSUMER)
    except NotFoundError:
        await js.add_consumer(EVENTS_STREAM, matcher_config())
