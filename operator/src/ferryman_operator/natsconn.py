"""The operator's one NATS connection, made at start-up and shared by all handlers."""

from __future__ import annotations

import logging

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext

from ferryman_jetstream import ensure_streams

log = logging.getLogger(__name__)


class NatsUnavailable(RuntimeError):
    pass


async def connect(servers: list[str], stream_replicas: int) -> tuple[Client, JetStreamContext]:
    """Connect (reconnecting forever afterwards) and make sure the streams exist."""

    async def on_error(error: Exception) -> None:
        log.warning("NATS: %s", error)

    try:
        nc = await nats.connect(
            servers=servers,
            name="ferryman-operator",
            connect_timeout=5,
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            error_cb=on_error,
        )
    except Exception as error:
        raise NatsUnavailable(
            f"cannot connect to NATS at {', '.join(servers)} ({error!r}); "
            "check FERRYMAN_NATS_URL and that the server runs with JetStream (-js)"
        ) from error
    js = nc.jetstream(timeout=5)
    try:
        await ensure_streams(js, replicas=stream_replicas)
    except Exception as error:
        await nc.close()
        raise NatsUnavailable(
            f"NATS at {', '.join(servers)} has no usable JetStream ({error!r}); "
            "start nats-server with JetStream enabled (-js), version 2.14 or newer"
        ) from error
    return nc, js
