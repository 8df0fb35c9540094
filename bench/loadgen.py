"""Unrelated-event load for scenario (e), in its own process (like a gateway would be).

Sends ``rate`` events per second for ``secs`` seconds through a real
:class:`ferryman_worker.storage.events.EventBus` (PostgreSQL insert, then JetStream publish), in
batches of ``batch`` events per ``EventBus.send`` call, paced against the clock, with at
most ``inflight`` sends in flight. Writes what it achieved as JSON::

    python -m bench.loadgen --db-url ... --nats-url ... --rate 5000 --secs 20 \
        --batch 250 --noise mixed --result /tmp/load.json

``--noise``: ``other-name`` events are named ``bench/noise`` (nobody waits for that name);
``same-name`` events are named like the pending waits' event (``bench/match``) with a key
no wait has; ``mixed`` alternates the two batch by batch. A ``ready`` line on stdout tells
the parent that connections are up; the load starts when the parent writes a line to stdin.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from pathlib import Path

import nats
from psycopg_pool import AsyncConnectionPool

from ferryman import Event
from ferryman_worker.storage.events import EventBus


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def run(args: argparse.Namespace) -> dict[str, object]:
    pool = AsyncConnectionPool(
        args.db_url, min_size=2, max_size=max(2, args.inflight), kwargs={"autocommit": True},
        open=False,
    )  # fmt: skip
    await pool.open(wait=True, timeout=30)
    nc = await nats.connect(args.nats_url, name="ferryman-bench-loadgen")
    bus = EventBus(pool, nc.jetstream(timeout=10))
    # warm the path (connections, prepared statements) with one small batch
    await bus.send([Event(name="bench/noise", data={"warm": True})])
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

    sem = asyncio.Semaphore(args.inflight)
    sent = 0
    failed = 0
    per_second: dict[int, int] = {}
    send_ms: list[float] = []
    behind_max = 0.0
    tasks: set[asyncio.Task[None]] = set()

    async def one(k: int) -> None:
        nonlocal sent, failed
        same = args.noise == "same-name" or (args.noise == "mixed" and k % 2 == 1)
        events = [
            Event(name="bench/match", data={"k": f"noise-{k}-{i}", "i": i})
            if same
            else Event(name="bench/noise", data={"k": f"noise-{k}-{i}", "i": i})
            for i in range(args.batch)
        ]
        t = time.perf_counter()
        try:
            await bus.send(events)
            sent += len(events)
            sec = int(time.monotonic() - t0)
            per_second[sec] = per_second.get(sec, 0) + len(events)
        except Exception as exc:  # counted, not fatal: the figure shows what got through
            failed += len(events)
            print(f"send failed: {exc!r}", file=sys.stderr)
        finally:
            send_ms.append((time.perf_counter() - t) * 1000)
            sem.release()

    cpu0 = _cpu()
    t0 = time.monotonic()
    interval = args.batch / args.rate
    k = 0
    while True:
        due = t0 + k * interval
        if due - t0 >= args.secs:
            break
        now = time.monotonic()
        if due > now:
            await asyncio.sleep(due - now)
        else:
            behind_max = max(behind_max, now - due)
        await sem.acquire()
        task = asyncio.create_task(one(k))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        k += 1
    if tasks:
        await asyncio.gather(*tasks)
    elapsed = time.monotonic() - t0
    cpu = _cpu() - cpu0
    await nc.close()
    await pool.close()
    send_ms.sort()
    return {
        "target_rate": args.rate,
        "secs": args.secs,
        "batch": args.batch,
        "inflight": args.inflight,
        "noise": args.noise,
        "sent": sent,
        "failed": failed,
        "elapsed_s": round(elapsed, 3),
        "achieved_rate": sent / max(elapsed, args.secs),
        "per_second": [per_second.get(s, 0) for s in range(int(elapsed) + 1)],
        "send_ms_p50": send_ms[len(send_ms) // 2] if send_ms else None,
        "send_ms_p99": send_ms[min(len(send_ms) - 1, int(len(send_ms) * 0.99))]
        if send_ms
        else None,
        "max_behind_schedule_s": round(behind_max, 3),
        "cpu_s": round(cpu, 3),
        "t_start_unix": time.time() - elapsed,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.loadgen")
    ap.add_argument("--db-url", required=True)
    ap.add_argument("--nats-url", required=True)
    ap.add_argument("--rate", type=float, default=5000)
    ap.add_argument("--secs", type=float, default=20)
    ap.add_argument("--batch", type=int, default=250)
    ap.add_argument("--inflight", type=int, default=4)
    ap.add_argument("--noise", choices=["other-name", "same-name", "mixed"], default="mixed")
    ap.add_argument("--result", type=Path, required=True)
    args = ap.parse_args(argv)
    out = asyncio.run(run(args))
    args.result.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
