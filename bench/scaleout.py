"""Scenario (i), scale-out: the same runs with 1, 2 and 4 ``ferryman worker`` processes.

For each count, fresh worker processes host ``bench.scale_app``; after a warm-up, ``runs``
events are sent in one batch and timed from the send to the last run's ``ended_at``. The
CPU seconds of the workers, PostgreSQL and NATS over that window, divided by the steps,
give the cost of one step per component, from which docs/benchmarks.md projects a larger
machine. Every step body appends to a ledger: an execution beyond one per step fails the
scenario.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from bench.common import CpuMeter, Result

if TYPE_CHECKING:
    from bench.ferryman_side import Side

FUNCTION = "bench-scale-seq"


def spawn(side: Side, n: int, ledger: Path, tmp: Path) -> list[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FERRYMAN_")}
    env.update(FERRYMAN_DATABASE_URL=side.db_url, FERRYMAN_NATS_URL=side.nats_url,
               BENCH_SCALE_LEDGER=str(ledger))  # fmt: skip
    procs = []
    for i in range(n):
        log = (tmp / f"scale-{n}-{i}.log").open("wb")
        command = [sys.executable, "-m", "ferryman_worker.cli", "worker", "-m", "bench.scale_app"]
        env_i = {**env, "FERRYMAN_WORKER_ID": f"scale-{n}-{i}"}
        procs.append(
            subprocess.Popen(
                command, env=env_i, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        )
    return procs


async def ready(procs: list[subprocess.Popen[bytes]], tmp: Path, n: int) -> None:
    deadline = time.monotonic() + 60
    for i, proc in enumerate(procs):
        log = tmp / f"scale-{n}-{i}.log"
        while "hosting" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {i} of {n} did not start: {log.read_text()[-2000:]}")
            await asyncio.sleep(0.1)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def worker_cpu(procs: list[subprocess.Popen[bytes]]) -> float:
    total = 0.0
    for proc in procs:
        t = psutil.Process(proc.pid).cpu_times()
        total += t.user + t.system
    return total


async def one_count(
    side: Side, n: int, runs: int, steps: int, done_before: int, timeout: float, tmp: Path
) -> dict[str, Any]:
    ledger = tmp / f"ledger-{n}.txt"
    procs = spawn(side, n, ledger, tmp)
    try:
        await ready(procs, tmp, n)
        warm = max(20, runs // 10)
        await side.send("bench/scale", [{"steps": steps}] * warm)
        await side.wait_done(FUNCTION, done_before + warm, timeout, f"warm-up ({n} workers)")
        await asyncio.sleep(0.5)
        ledger.write_text("")  # count the measured runs only
        cpu = CpuMeter().start()
        w0 = worker_cpu(procs)
        t0 = time.time()
        await side.send("bench/scale", [{"steps": steps}] * runs, batch=runs)
        await side.wait_done(FUNCTION, done_before + warm + runs, timeout, "scale-out", poll=0.02)
        w1 = worker_cpu(procs)
        spent = cpu.stop()
        cur = await side.obs.execute(
            "SELECT extract(epoch FROM max(ended_at)) FROM runs WHERE function_id = %s "
            "AND created_at >= to_timestamp(%s)",
            (FUNCTION, t0),
        )
        row = await cur.fetchone()
        assert row is not None
        elapsed = float(row[0]) - t0
    finally:
        stop(procs)
    executions = Counter(ledger.read_text().splitlines())
    total = runs * steps
    per_step = {
        "worker": (w1 - w0) / total * 1e6,
        "postgresql": spent.get("postgres_cpu_s", float("nan")) / total * 1e6,
        "nats": spent.get("nats_cpu_s", float("nan")) / total * 1e6,
    }
    return {
        "workers": n,
        "steps_per_second": total / elapsed,
        "elapsed_s": elapsed,
        "extra_executions": sum(c - 1 for c in executions.values() if c > 1),
        "executions": sum(executions.values()),
        "cpu_us_per_step": {k: round(v, 1) for k, v in per_step.items()},
        "machine_cpu_s": spent.get("machine_cpu_s"),
        "wall_s": spent.get("wall_s"),
    }


async def run(side: Side, result: Result, timeout: float) -> None:
    runs, steps = int(side.params["runs"]), int(side.params["steps"])
    counts = [int(c) for c in side.params.get("workers", [1, 2, 4])]
    tmp = Path(os.environ.get("BENCH_TMP", "/tmp"))
    rows: list[dict[str, Any]] = []
    done = 0
    for n in counts:
        rows.append(await one_count(side, n, runs, steps, done, timeout, tmp))
        done, _ = await side.counts(FUNCTION)
    base = rows[0]["steps_per_second"]
    cost = rows[0]["cpu_us_per_step"]
    total_us = sum(v for v in cost.values() if not math.isnan(v))
    result.metrics = {
        "by_workers": rows,
        "scaling": {str(r["workers"]): r["steps_per_second"] / base for r in rows},
        "worst_scaling": min(r["steps_per_second"] / base for r in rows),
        "cpu_us_per_step": cost,
        # If every component got the cores it needs: 16 cores over the CPU one step costs.
        "projected_16_cores_steps_per_s": 16e6 / total_us if total_us else None,
        "saturates_first": max(cost, key=lambda k: cost[k]),
        "how": f"{runs} runs of {steps} no-op steps sent in one batch to 1, 2, 4 "
        "`ferryman worker` processes (fresh for each count); from the send to the last "
        "ended_at; CPU from /proc over that window",
    }
    extra = sum(r["extra_executions"] for r in rows)
    if extra:
        raise RuntimeError(f"{extra} step executions beyond one per step")
    short = [r for r in rows if r["executions"] < runs * steps]
    if short:
        raise RuntimeError(f"steps missing from the ledger: {short}")
