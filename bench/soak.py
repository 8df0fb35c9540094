"""Scenario (h), the soak: minutes of paced single-event POSTs through the gateway.

Each event starts a run of five no-op steps with one short sleep in the middle. The load
is offered at a fixed rate (by default half the runs/s that (b) measured in the same
``python -m bench`` run, so the figure follows the machine's speed of the day) from a
process of its own (``bench.ingest pace``). Every ``sample`` seconds it records the
gateway's and the worker's RSS, the size and dead rows of every table, and each JetStream
stream's messages and bytes. It fails (the bench exits non-zero) when a run is missing,
memory grows more than 10 % after warm-up, or the work stream keeps what was acknowledged.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from bench.common import Result, summary

if TYPE_CHECKING:
    from bench.ferryman_side import Side

TABLES = ("runs", "steps", "step_attempts", "events", "timers", "run_keys")
STREAMS = ("FERRYMAN_EVENTS", "FERRYMAN_WORK", "FERRYMAN_TIMERS")


async def sample(side: Side, gateway_pid: int, t0: float) -> dict[str, Any]:
    cur = await side.obs.execute(
        "SELECT relname, pg_total_relation_size(relid), n_live_tup, n_dead_tup "
        "FROM pg_stat_user_tables WHERE relname = ANY(%s)",
        (list(TABLES),),
    )
    tables = {
        r[0]: {"bytes": int(r[1]), "live": int(r[2]), "dead": int(r[3])}
        for r in await cur.fetchall()
    }
    streams = {}
    for name in STREAMS:
        info = await side.worker.js.stream_info(name)
        streams[name] = {"messages": info.state.messages, "bytes": info.state.bytes}
    ok, bad = await side.counts(side.fn("soak"))
    return {
        "t": round(time.time() - t0, 1),
        "gateway_rss": psutil.Process(gateway_pid).memory_info().rss,
        "worker_rss": psutil.Process().memory_info().rss,
        "completed": ok,
        "failed": bad,
        "tables": tables,
        "streams": streams,
    }


async def pace(url: str, rate: float, secs: float, sleep: float) -> dict[str, Any]:
    out = Path(os.environ.get("BENCH_TMP", "/tmp")) / f"pace-{uuid.uuid4().hex}.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.ingest", "pace", url, "--rate", f"{rate:.3f}",
        "--secs", str(secs), "--name", "bench/soak", "--data", json.dumps({"sleep": sleep}),
        "--result", str(out),
    )  # fmt: skip
    if await proc.wait() != 0:
        raise RuntimeError("the paced load generator failed")
    figures: dict[str, Any] = json.loads(out.read_text())
    out.unlink()
    return figures


def growth(samples: list[dict[str, Any]], key: str, warm: float) -> float:
    """RSS at the end against RSS once warm (the first sample after ``warm`` seconds)."""
    after = [s for s in samples if s["t"] >= warm] or samples
    return after[-1][key] / after[0][key] - 1


async def run(side: Side, result: Result, timeout: float, gateway: Any) -> None:
    rate = float(side.params["rate"])
    secs, sleep = float(side.params["secs"]), float(side.params.get("sleep", 0.5))
    every = float(side.params.get("sample", max(2.0, secs / 20)))
    warm = float(side.params.get("warm", secs / 5))
    fid = side.fn("soak")
    t0 = time.time()
    samples: list[dict[str, Any]] = []
    load = asyncio.create_task(pace(f"{gateway.url}/e/bench", rate, secs, sleep))
    while not load.done():
        samples.append(await sample(side, gateway.proc.pid, t0))
        await asyncio.wait({load}, timeout=every)
    paced = load.result()
    accepted = paced["sent"] - paced["not_200"]
    await side.wait_done(fid, accepted, timeout, "soak", poll=0.2)
    await asyncio.sleep(every)  # the work stream's last acks, one more sample
    samples.append(await sample(side, gateway.proc.pid, t0))
    cur = await side.obs.execute(
        "SELECT extract(epoch FROM r.ended_at - e.received_at) FROM runs r "
        "JOIN events e ON e.id = r.event_id WHERE r.function_id = %s "
        "AND r.created_at >= to_timestamp(%s)",
        (fid, t0),
    )
    latencies = [float(r[0]) for r in await cur.fetchall()]
    last = samples[-1]
    per_run = {t: round(v["bytes"] / max(1, last["completed"])) for t, v in last["tables"].items()}
    result.metrics = {
        "offered_runs_per_s": rate,
        "secs": secs,
        "sleep_s": sleep,
        "paced": paced,
        "accepted": accepted,
        "completed": last["completed"],
        "event_to_end_s": summary(latencies),
        "p99_minus_sleep_s": summary(latencies)["p99"] - sleep,
        "gateway_rss_growth": growth(samples, "gateway_rss", warm),
        "worker_rss_growth": growth(samples, "worker_rss", warm),
        "bytes_per_run": per_run,
        "work_stream_left": last["streams"]["FERRYMAN_WORK"]["messages"],
        "timers_stream_left": last["streams"]["FERRYMAN_TIMERS"]["messages"],
        "samples": samples,
        "how": f"{rate:.1f} events/s offered for {secs:g} s, one per POST /e from a paced "
        f"process; each run 5 no-op steps and a {sleep:g} s sleep; worker in-process, "
        "`ferryman gateway` in its own",
    }
    problems = []
    if last["completed"] < accepted:
        problems.append(f"{accepted - last['completed']} accepted events have no completed run")
    for key in ("gateway_rss_growth", "worker_rss_growth"):
        # a smoke run of seconds is all warm-up: memory is judged on minutes only
        if secs >= 120 and result.metrics[key] > 0.10:
            problems.append(f"{key} {result.metrics[key]:.0%} after warm-up (limit 10 %)")
    if result.metrics["work_stream_left"] > 0:
        problems.append(f"FERRYMAN_WORK keeps {result.metrics['work_stream_left']} messages")
    if problems:
        raise RuntimeError("; ".join(problems))
