"""Helpers shared by both sides: percentiles, an RSS sampler, results."""

from __future__ import annotations

import gc
import json
import math
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "min": min(values) if values else math.nan,
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else math.nan,
        "mean": sum(values) / len(values) if values else math.nan,
    }


class RssSampler:
    """Samples this process's resident set size from a thread (the event loop may be busy)."""

    def __init__(self, interval: float = 0.1) -> None:
        self.proc = psutil.Process()
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")

    def rss(self) -> int:
        return int(self.proc.memory_info().rss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), self.rss()))
            self._stop.wait(self.interval)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((time.time(), self.rss()))

    def peak(self, since: float = 0.0, until: float = math.inf) -> int:
        window = [r for t, r in self.samples if since <= t <= until]
        return max(window) if window else 0


def settle_memory() -> int:
    """Collect garbage, give background threads a moment, return RSS in bytes."""
    gc.collect()
    time.sleep(0.5)
    gc.collect()
    return int(psutil.Process().memory_info().rss)


MB = 1024 * 1024


@dataclass
class Result:
    """What one (system, scenario) child process reports."""

    system: str
    scenario: str
    status: str = "ok"  # ok | timeout | error
    message: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, default=str))


class ScenarioTimeout(Exception):
    """A scenario did not finish in its time budget; the message says how far it got."""


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process, its reaped children (exited backends) and live children."""
    try:
        root = psutil.Process(pid)
        t = root.cpu_times()
        total: float = t.user + t.system + t.children_user + t.children_system
        for child in root.children(recursive=True):
            with _suppress():
                c = child.cpu_times()
                total += c.user + c.system
        return total
    except psutil.Error:
        return math.nan


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], psutil.Error)  # type: ignore[arg-type]


class CpuMeter:
    """CPU seconds spent by this process, PostgreSQL and NATS over a measured window.

    The orchestrator passes the servers' pids in ``BENCH_PIDS`` (``postgres:123,nats:456``).
    On a 2-core machine this shows who is the bottleneck.
    """

    def __init__(self) -> None:
        import os

        self.pids: dict[str, int] = {}
        for part in os.environ.get("BENCH_PIDS", "").split(","):
            if ":" in part:
                name, pid = part.split(":", 1)
                self.pids[name] = int(pid)
        self.me = psutil.Process()

    def snapshot(self) -> dict[str, float]:
        t = self.me.cpu_times()
        snap = {"this_process": t.user + t.system, "wall": time.monotonic()}
        for name, pid in self.pids.items():
            snap[name] = _tree_cpu(pid)
        m = psutil.cpu_times()
        snap["machine"] = (
            m.user
            + m.system
            + getattr(m, "nice", 0.0)
            + getattr(m, "irq", 0.0)
            + getattr(m, "softirq", 0.0)
        )
        return snap

    def start(self) -> CpuMeter:
        self._start = self.snapshot()
        return self

    def stop(self) -> dict[str, float]:
        end = self.snapshot()
        wall = end["wall"] - self._start["wall"]
        out = {"wall_s": round(wall, 3)}
        for key in end:
            if key != "wall":
                out[f"{key}_cpu_s"] = round(end[key] - self._start[key], 3)
        ours = sum(out.get(f"{k}_cpu_s", 0.0) for k in ("this_process", *self.pids))
        # CPU that neither the system under test nor its servers used: other work on the
        # machine that competed with the benchmark (should be near 0 for a clean figure).
        out["other_processes_cpu_s"] = round(out["machine_cpu_s"] - ours, 3)
        out["cores"] = psutil.cpu_count() or 0
        return out
