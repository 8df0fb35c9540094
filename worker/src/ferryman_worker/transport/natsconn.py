"""The process's NATS connection: reconnects for ever, and says so in two lines.

nats-py retries a lost server every half second and, left to its defaults, logs each
refused connection with a traceback; ``logs.py`` silences its logger instead. What a
person needs is the outage itself: one line when the connection drops, one when it is
back with how long it lasted (:class:`~ferryman_worker.common.logs.Outage`, as for PostgreSQL).
"""

from __future__ import annotations

import logging

import nats
from nats.aio.client import Client

from ferryman_worker.common.logs import Outage

# Errors nats-py reports while a connection dies or a reconnect is refused.
_CONNECTION_ERRORS = (
    OSError,
    nats.errors.NoServersError,
    nats.errors.UnexpectedEOF,
    nats.errors.StaleConnectionError,
    nats.errors.ConnectionClosedError,
)


async def connect(url: str, name: str, log: logging.Logger) -> Client:
    outage = Outage(log, "NATS")
    nc: Client | None = None

    async def disconnected() -> None:
        if nc is not None and not nc.is_closed:  # our own close is no outage
            outage.failed(ConnectionError(f"lost the connection to {url}"))

    async def reconnected() -> None:
        outage.ok()

    async def error(exc: Exception) -> None:
        if isinstance(exc, _CONNECTION_ERRORS):
            outage.failed(exc)  # the first says so; reconnect attempts only count
        else:
            log.warning("NATS: %s: %s", type(exc).__name__, exc or "no detail")

    nc = await nats.connect(
        url,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        name=name,
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
        error_cb=error,
    )
    return nc
