"""Scenario (g)'s two halves, each in its own process.

``python -m bench.ingest load URL --clients 64 --secs 20 --batch 1 --result out.json``
    64 keep-alive clients each POST one request after another (``batch`` events per
    request) for ``secs`` seconds; writes requests/s, events/s, latency percentiles and
    how many answers were not 200.

``python -m bench.ingest pace URL --rate R --secs S --name N --data JSON --result out.json``
    Open loop, for the soak (h): one event per POST at ``R`` per second, whatever the
    answers' latency (at most 256 requests in flight); writes what was sent and accepted.

``python -m bench.ingest noop --port P [--processes N]``
    The ceiling: a route on the same HTTP stack as the gateway (uvicorn + Starlette, same
    number of processes) that reads and parses the body and answers like ``POST /e``,
    storing nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def _noop(request: Request) -> Response:
    payload = orjson.loads(await request.body())
    items = payload if isinstance(payload, list) else [payload]
    ids = [item.get("id") or uuid.uuid4().hex for item in items]
    return Response(orjson.dumps({"ids": ids, "status": 200}), media_type="application/json")


async def _ready(request: Request) -> Response:
    return Response(b'{"ready": true}', media_type="application/json")


def noop_app() -> Starlette:
    return Starlette(routes=[Route("/e/{key}", _noop, methods=["POST"]), Route("/ready", _ready)])


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def load(url: str, clients: int, secs: float, batch: int) -> dict[str, object]:
    latencies: list[float] = []
    failures = 0
    sent_events = 0
    deadline = 0.0

    async def client(session: aiohttp.ClientSession, n: int) -> None:
        nonlocal failures, sent_events
        i = 0
        while time.perf_counter() < deadline:
            events = [
                {"name": "bench/ingest", "id": f"{n}-{i}-{k}-{uuid.uuid4().hex[:8]}",
                 "data": {"client": n, "seq": i, "k": k}}
                for k in range(batch)
            ]  # fmt: skip
            body = orjson.dumps(events[0] if batch == 1 else events)
            t0 = time.perf_counter()
            async with session.post(
                url, data=body, headers={"content-type": "application/json"}
            ) as response:
                await response.read()
                ok = response.status == 200
            latencies.append(time.perf_counter() - t0)
            if ok:
                sent_events += batch
            else:
                failures += 1
            i += 1

    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        # warm-up: one request per client opens every keep-alive connection
        deadline = time.perf_counter() + 0.5
        await asyncio.gather(*(client(session, n) for n in range(clients)))
        latencies.clear()
        failures = sent_events = 0
        start = time.perf_counter()
        deadline = start + secs
        await asyncio.gather(*(client(session, n) for n in range(clients)))
        elapsed = time.perf_counter() - start
    return {
        "requests": len(latencies),
        "events": sent_events,
        "not_200": failures,
        "secs": elapsed,
        "requests_per_s": len(latencies) / elapsed,
        "events_per_s": sent_events / elapsed,
        "p50_ms": _percentile(latencies, 0.50) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
        "clients": clients,
        "batch": batch,
    }


async def pace(
    url: str, rate: float, secs: float, name: str, data: dict[str, Any]
) -> dict[str, Any]:
    """POST one event every 1/rate s on a fixed schedule (not after the previous answer):
    a slow answer must not slow the offered load, or a soak would hide its own backlog."""
    latencies: list[float] = []
    failures = 0
    inflight = asyncio.Semaphore(256)
    late = 0

    async def one(session: aiohttp.ClientSession, seq: int) -> None:
        nonlocal failures
        body = orjson.dumps({"name": name, "data": {**data, "seq": seq}})
        t0 = time.perf_counter()
        try:
            async with session.post(
                url, data=body, headers={"content-type": "application/json"}
            ) as response:
                await response.read()
                if response.status != 200:
                    failures += 1
        except aiohttp.ClientError:
            failures += 1
        finally:
            latencies.append(time.perf_counter() - t0)
            inflight.release()

    connector = aiohttp.TCPConnector(limit=256, force_close=False)
    tasks: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        total = int(rate * secs)
        for seq in range(total):
            due = start + seq / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.1:
                late += 1
            await inflight.acquire()
            task = asyncio.create_task(one(session, seq))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*list(tasks))
        elapsed = time.perf_counter() - start
    return {
        "sent": total,
        "not_200": failures,
        "secs": elapsed,
        "offered_per_s": rate,
        "achieved_per_s": total / elapsed,
        "sent_late": late,
        "p50_ms": _percentile(latencies, 0.50) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.ingest")
    sub = ap.add_subparsers(dest="cmd", required=True)
    lp = sub.add_parser("load")
    lp.add_argument("url")
    lp.add_argument("--clients", type=int, default=64)
    lp.add_argument("--secs", type=float, default=20)
    lp.add_argument("--batch", type=int, default=1)
    lp.add_argument("--result", type=Path, required=True)
    pp = sub.add_parser("pace")
    pp.add_argument("url")
    pp.add_argument("--rate", type=float, required=True)
    pp.add_argument("--secs", type=float, required=True)
    pp.add_argument("--name", required=True)
    pp.add_argument("--data", type=json.loads, default={})
    pp.add_argument("--result", type=Path, required=True)
    np = sub.add_parser("noop")
    np.add_argument("--port", type=int, required=True)
    np.add_argument("--processes", type=int, default=1)
    args = ap.parse_args(argv)
    if args.cmd == "load":
        out = asyncio.run(load(args.url, args.clients, args.secs, args.batch))
        args.result.write_text(json.dumps(out))
        return 0
    if args.cmd == "pace":
        paced = asyncio.run(pace(args.url, args.rate, args.secs, args.name, args.data))
        args.result.write_text(json.dumps(paced))
        return 0
    uvicorn.run(
        "bench.ingest:noop_app",
        factory=True,
        host="127.0.0.1",
        port=args.port,
        workers=args.processes if args.processes > 1 else None,
        log_level="warning",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
