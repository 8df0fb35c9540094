"""Helpers shared by both sides: percentiles, an RSS sampler, results."""

from __future__ import annotations

import gc
import itertools
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
    # Correctness checks the run broke (scenario f): the bench then exits non-zero.
    violations: list[str] = field(default_factory=list)

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


# -- scenario (f): judging flow control from what the step bodies recorded ------------------


def max_overlap(spans: list[tuple[Any, float, float]]) -> dict[Any, int]:
    """The most (key, start, end) spans open at once, per key; an end at the same instant
    as a start counts first (the slot was free)."""
    points: dict[Any, list[tuple[float, int]]] = {}
    for key, start, end in spans:
        points.setdefault(key, []).extend([(start, 1), (end, -1)])
    peaks = {}
    for key, pts in points.items():
        now = peak = 0
        for _, delta in sorted(pts):  # (t, -1) sorts before (t, +1)
            now += delta
            peak = max(peak, now)
        peaks[key] = peak
    return peaks


def jain(values: list[float]) -> float:
    """Jain's fairness index: 1 when all equal, 1/n when one value holds everything."""
    if not values:
        return math.nan
    square = sum(v * v for v in values)
    return sum(values) ** 2 / (len(values) * square) if square else 1.0


def keyed_figures(
    spans: list[tuple[Any, float, float]], t0: float, runs: int, limit: int
) -> dict[str, Any]:
    """Scenario (f) keyed concurrency: per-key peak and fairness of per-key completion
    times (seconds from the first send to the key's last step end)."""
    peaks = max_overlap(spans)
    done: dict[Any, float] = {}
    for key, _, end in spans:
        done[key] = max(done.get(key, 0.0), end - t0)
    return {
        "step_bodies_seen": len(spans),
        "max_concurrency_per_key": max(peaks.values()) if peaks else None,
        "keys_over_limit": sum(1 for p in peaks.values() if p > limit),
        "keys_at_limit": sum(1 for p in peaks.values() if p == limit),
        "jain_fairness": jain(list(done.values())),
        "key_completion_s": summary(list(done.values())),
    }


def throttle_figures(starts: list[float]) -> dict[str, Any]:
    """Achieved start rate: the slope of the k-th start's time against k (least squares),
    so a constant delay of the timer-started runs behind the first one, which starts at
    once, does not count as a slower rate; also (n - 1) / (last start - first)."""
    starts = sorted(starts)
    if len(starts) < 2:
        return {"starts": len(starts), "achieved_rate": None}
    span = starts[-1] - starts[0]
    n = len(starts)
    mean_k, mean_t = (n - 1) / 2, sum(starts) / n
    slope = sum((k - mean_k) * (t - mean_t) for k, t in enumerate(starts)) / sum(
        (k - mean_k) ** 2 for k in range(n)
    )
    per_second: dict[int, int] = {}
    for t in starts:
        per_second[int(t - starts[0])] = per_second.get(int(t - starts[0]), 0) + 1
    full = [per_second.get(s, 0) for s in range(int(span))]  # whole seconds only
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    return {
        "starts": len(starts),
        "achieved_rate": 1 / slope if slope > 0 else math.inf,
        "first_to_last_rate": (n - 1) / span if span > 0 else math.inf,
        "span_s": span,
        "starts_per_whole_second": summary([float(x) for x in full]) if full else None,
        "gap_ms": summary([g * 1000 for g in gaps]),
    }


def debounce_figures(
    seen: list[tuple[str, Any, int]], keys: int, last: int, created: int
) -> dict[str, Any]:
    """``seen``: (run id, key, event seq) per step body; ``last``: the seq of every key's
    last event; ``created``: runs the system created for the measured events."""
    runs: dict[str, tuple[Any, int]] = {run: (key, seq) for run, key, seq in seen}
    per_key: dict[Any, int] = {}
    for key, _ in runs.values():
        per_key[key] = per_key.get(key, 0) + 1
    return {
        "runs_created": created,
        "runs_seen_by_step_bodies": len(runs),
        "keys_with_a_run": len(per_key),
        "keys_with_more_than_one_run": sum(1 for n in per_key.values() if n > 1),
        "runs_with_last_event": sum(1 for _, seq in runs.values() if seq == last),
        "expected_runs": keys,
    }


def flow_violations(metrics: dict[str, Any], params: dict[str, Any]) -> list[str]:
    """The correctness checks of scenario (f) that ``metrics`` break."""
    limit, rate = int(params["limit"]), float(params["rate"])
    keys, period = int(params["debounce_keys"]), float(params["debounce_s"])
    out = []
    k = metrics.get("keyed", {})
    peak = k.get("max_concurrency_per_key")
    if peak is None or peak > limit:
        out.append(f"keyed concurrency: {peak} step bodies of one key at once (limit {limit})")
    t = metrics.get("throttle", {})
    got = t.get("achieved_rate")
    if got is None or abs(got - rate) > 0.05 * rate:
        out.append(f"throttle: achieved {got} starts/s, not within 5% of {rate:g}")
    d = metrics.get("debounce", {})
    gap = d.get("max_decision_gap_per_key_s")
    if gap is not None and gap >= period:
        # Not exactness: the events came to the engine slower than the period.
        out.append(
            f"debounce: the period ({period:g} s) elapsed between two events of one key as "
            f"the engine decided them ({gap:.1f} s apart), so this run does not test "
            "exactness: give a longer --f-debounce-secs"
        )
    if not (d.get("runs_created") == d.get("runs_seen_by_step_bodies") == keys):
        out.append(
            f"debounce: {d.get('runs_created')} runs created, "
            f"{d.get('runs_seen_by_step_bodies')} ran, expected exactly {keys}"
        )
    if d.get("runs_with_last_event") != keys or d.get("keys_with_a_run") != keys:
        out.append(
            f"debounce: {d.get('runs_with_last_event')} of {keys} keys ran with their last "
            f"event ({d.get('keys_with_a_run')} keys ran at all)"
        )
    return out
