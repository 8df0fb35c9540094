"""Look at JetStream directly (nats-py), as a person would with the nats CLI."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import nats
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

T = TypeVar("T")


def with_js(url: str, action: Callable[[JetStreamContext], Awaitable[T]]) -> T:
    async def main() -> T:
        nc = await nats.connect(url)
        try:
            return await action(nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(main())


def consumer_info(url: str, stream: str, name: str) -> Any | None:
    async def get(js: JetStreamContext) -> Any | None:
        try:
            return await js.consumer_info(stream, name)
        except NotFoundError:
            return None

    return with_js(url, get)


def delete_consumer(url: str, stream: str, name: str) -> None:
    async def delete(js: JetStreamContext) -> None:
        await js.delete_consumer(stream, name)

    with_js(url, delete)


def publish(url: str, subject: str, count: int) -> None:
    async def send(js: JetStreamContext) -> None:
        for i in range(count):
            await js.publish(subject, f'{{"n": {i}}}'.encode())

    with_js(url, send)


def fetch(url: str, stream: str, durable: str, count: int, ack: int, wait: float = 5) -> int:
    """Pull up to ``count`` jobs (for at most ``wait`` seconds) from a durable consumer, as a
    worker would, and ack the first ``ack`` of them; the others stay in flight."""

    async def pull(js: JetStreamContext) -> int:
        sub = await js.pull_subscribe_bind(durable=durable, stream=stream)
        got = acked = 0
        deadline = asyncio.get_running_loop().time() + wait
        while got < count and asyncio.get_running_loop().time() < deadline:
            try:
                batch = await sub.fetch(count - got, timeout=1)
            except nats.errors.TimeoutError:
                continue
            for msg in batch:  # finish jobs as they come (MaxAckPending bounds what is held)
                got += 1
                if acked < ack:
                    await msg.ack()
                    acked += 1
        return got

    return with_js(url, pull)
