"""The TIMERS stream stays bounded: a fired one-shot timer leaves only its firing, and the
firing expires within the hour (the stream keeps messages by age, not by ack; bench (h)
found a week's worth piling up). Real nats-server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import nats
import pytest

from ferryman_jetstream import ensure_streams, publish_at
from ferryman_jetstream.subjects import TIMERS_STREAM, timer_fired_subject
from ferryman_worker.dev.embedded import NatsServer

pytestmark = pytest.mark.integration


async def test_a_fired_timer_leaves_one_message_that_expires_within_the_hour(
    nats_server: NatsServer,
) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        await ensure_streams(js)
        when = datetime.now(UTC) + timedelta(milliseconds=200)
        await publish_at(js, "fn-a", "run-1", "sleep-nap", when, b"{}")
        for _ in range(50):
            if (await js.stream_info(TIMERS_STREAM)).state.messages == 1:
                try:
                    fired = await js.get_last_msg(TIMERS_STREAM, timer_fired_subject("fn-a"))
                    break
                except nats.js.errors.NotFoundError:
                    pass
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the timer never fired")
        assert fired.headers is not None
        assert fired.headers["Nats-TTL"] == "1h"  # removed by the server within the hour
        assert fired.headers["Nats-Schedule-Next"] == "purge"  # the definition is gone
        assert (await js.stream_info(TIMERS_STREAM)).state.messages == 1
    finally:
        await nc.close()
