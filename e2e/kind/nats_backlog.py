"""Helper for e2e/kind/run.sh: publish jobs to a function's work subject, or drain them.

python nats_backlog.py publish URL FUNCTION_ID COUNT
python nats_backlog.py drain URL FUNCTION_ID
"""

from __future__ import annotations

import asyncio
import sys

import nats
from nats.errors import TimeoutError as NatsTimeout

from ferryman_jetstream import WORK_STREAM
from ferryman_jetstream.subjects import work_consumer, work_subject


async def main(action: str, url: str, function_id: str, count: int) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    if action == "publish":
        for i in range(count):
            await js.publish(work_subject(function_id), f'{{"n": {i}}}'.encode())
    else:
        sub = await js.pull_subscribe_bind(durable=work_consumer(function_id), stream=WORK_STREAM)
        while True:
            try:
                for msg in await sub.fetch(50, timeout=2):
                    await msg.ack()
            except NatsTimeout:
                break
    await nc.close()


if __name__ == "__main__":
    asyncio.run(
        main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4] if len(sys.argv) > 4 else 0))
    )
