"""Pull loops: fetch jobs from a durable consumer while there are free slots, hand them on.

One loop per consumer. A job is acked when its handler says it is done, or nak'ed with a
delay (the run is leased elsewhere, or not hosted here). While a handler works, the
message's ack deadline is pushed back by ``in_progress``, so a long step is not
re-delivered to another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from ferryman_worker.common import metrics
from ferryman_worker.common.logs import Outage
from ferryman_worker.transport.slots import Slots

log = logging.getLogger("ferryman.consuming")

# NATS down: one line when pulls start failing (every loop shares it), one when they work.
PULLS_DOWN = Outage(log, "NATS JetStream (pulling work)")

BatchHandler = Callable[[list[Msg]], Awaitable[None]]
FETCH_MAX = 64
YIELD_MAX_SECONDS = 0.25  # new work waits at most this long for resumes to finish
FETCH_WHILE_YIELDING = 4
IDLE_WAIT_SECONDS = 2.0
DRAIN_SECONDS = 0.005


async def pull_loop(
    js: JetStreamContext,
    stream: str,
    consumer: str,
    slots: Slots,
    handle: BatchHandler,
    stopping: asyncio.Event,
    yield_to: Slots | None = None,
) -> None:
    """Fetch batches from ``stream``/``consumer`` until ``stopping`` is set.

    With ``yield_to``, fetch only while that pool is idle (or after a short wait), so
    runs already in flight are resumed before new ones start.
    """
    sub = None
    busy = False
    while not stopping.is_set():
        try:
            if sub is None:
                sub = await js.pull_subscribe_bind(consumer, stream=stream)
            most = FETCH_MAX
            if yield_to is not None:
                await yield_to.idle_or(YIELD_MAX_SECONDS)
                if yield_to.busy:  # resumes still pending: let new work in only a trickle
                    most = FETCH_WHILE_YIELDING
            room = await slots.wait_free(most)
            if stopping.is_set():
                break
            # nats-py's fetch(batch=n) holds what arrives until the batch is full or the
            # timeout ends, so: idle, wait for one message (returned as soon as it comes);
            # busy, take what is pending now, waiting at most a few milliseconds.
            if busy:
                msgs = await sub.fetch(room, timeout=DRAIN_SECONDS)
            else:
                msgs = await sub.fetch(1, timeout=IDLE_WAIT_SECONDS)
        except (TimeoutError, nats.errors.TimeoutError):
            busy = False
            continue
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            metrics.STORE_ERRORS.labels("nats").inc()
            PULLS_DOWN.failed(exc)
            sub = None
            await asyncio.sleep(0.5)
            continue
        PULLS_DOWN.ok()
        busy = True
        slots.take(len(msgs))
        await handle(msgs)


async def settle(msg: Msg, done: bool, retry_in: float = 0.0) -> None:
    with contextlib.suppress(Exception):
        if done:
            await msg.ack()
        else:
            await msg.nak(delay=retry_in)
