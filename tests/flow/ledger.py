"""Reading the step bodies' own timestamps: how many ran at once, when each started."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from examples import services


def intervals(fn: str) -> dict[str, tuple[float, float | None, Any]]:
    """run id → (start, end or None, key), from the ``start``/``end`` records of ``fn``."""
    out: dict[str, tuple[float, float | None, Any]] = {}
    for r in services.records("start", fn=fn):
        out[r["run"]] = (r["ts"], None, r.get("key"))
    for r in services.records("end", fn=fn):
        start, _, key = out[r["run"]]
        out[r["run"]] = (start, r["ts"], key)
    return out


def max_overlap(fn: str, open_until: float | None = None) -> dict[Any, int]:
    """The most step bodies of ``fn`` running at once, per key. A body with no end (its
    worker was killed) counts as running until ``open_until``."""
    points: dict[Any, list[tuple[float, int]]] = defaultdict(list)
    for start, end, key in intervals(fn).values():
        stop = end if end is not None else open_until
        if stop is None:
            continue
        points[key] += [(start, 1), (stop, -1)]
    peaks = {}
    for key, pts in points.items():
        now = peak = 0
        for _, delta in sorted(pts, key=lambda p: (p[0], p[1])):  # ends before starts
            now += delta
            peak = max(peak, now)
        peaks[key] = peak
    return peaks


def starts(fn: str) -> list[float]:
    return sorted(r["ts"] for r in services.records("start", fn=fn))
