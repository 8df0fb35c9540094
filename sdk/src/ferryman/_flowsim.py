"""Flow control in virtual time, for ``ferryman.testing.run_events``.

The same rules as the worker's admission stage, decided per event in arrival order:
rate limit (GCRA; excess skipped), singleton ``skip``, debounce (the last event after
``period`` of quiet, capped by ``timeout``), batch (``max_size`` or ``timeout``),
throttle (GCRA on starts; delayed, never dropped), ``timeouts.start`` (a run that would
start later than that is cancelled) and ``timeouts.finish`` (a run still going that long
after its start is cancelled before its next step).

Step bodies take no virtual time, so a run only occupies time while it sleeps, waits or
backs off — and none of those hold a concurrency slot. Concurrency limits and priority
therefore never hold a run back here; they are enforced by the worker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ferryman._events import Event
from ferryman._expressions import Expression
from ferryman._function import Function


@dataclass
class Planned:
    """A run the rules decided on: its events and when it starts."""

    events: list[Event]
    arrived: datetime
    start: datetime
    cancelled: str | None = None  # why it never started (timeouts.start)


@dataclass
class Plan:
    runs: list[Planned] = field(default_factory=list)
    skipped: list[tuple[Event, str]] = field(default_factory=list)


def _key(source: str | None, event: Event, where: str) -> str:
    if not source:
        return ""
    try:
        return str(Expression(source, where=where).evaluate({"event": event.to_wire()}))
    except (ValueError, TypeError, RuntimeError, KeyError):
        return ""


class _Gcra:
    def __init__(self) -> None:
        self.tat: dict[str, datetime] = {}

    def reserve(
        self, key: str, now: datetime, period: timedelta, limit: int, tolerance: int, delay: bool
    ) -> datetime | None:
        interval = period / limit
        tat = max(self.tat.get(key, now), now)
        start = max(now, tat - interval * (tolerance - 1))
        if start > now and not delay:
            return None
        self.tat[key] = tat + interval
        return start


async def plan(
    fn: Function,
    arrivals: list[tuple[datetime, Event]],
    end_of: Callable[[Planned], Awaitable[datetime]],
) -> Plan:
    """Decide, in arrival order, what each event does. ``end_of(run)`` says when a planned
    run ends (the caller simulates it), for singleton."""
    c = fn.config
    out = Plan()
    rate, throttle = _Gcra(), _Gcra()
    gathering: dict[str, Planned] = {}
    first_at: dict[str, datetime] = {}
    singles: dict[str, Planned] = {}
    for at, event in sorted(arrivals, key=lambda a: a[0]):
        if c.rate_limit is not None:
            key = _key(c.rate_limit.key, event, "rate_limit key")
            r = c.rate_limit
            if rate.reserve(key, at, r.period, r.limit, r.limit, delay=False) is None:
                out.skipped.append((event, "rate_limit"))
                continue
        if c.singleton is not None:
            if c.singleton.mode == "cancel":
                raise NotImplementedError(
                    "ferryman.testing does not simulate Singleton(mode='cancel') yet; the "
                    "worker enforces it (test it through `ferryman dev`)"
                )
            key = _key(c.singleton.key, event, "singleton key")
            last = singles.get(key)
            if last is not None and (last.start > at or await end_of(last) > at):
                out.skipped.append((event, "singleton"))
                continue
        if c.debounce is not None:
            key = _key(c.debounce.key, event, "debounce key")
            run = gathering.get(key)
            if run is not None and run.start > at:
                out.skipped.append((run.events[0], "debounce"))
                run.events = [event]
                run.start = at + c.debounce.period
                if c.debounce.timeout is not None:
                    run.start = min(run.start, first_at[key] + c.debounce.timeout)
                continue
            wait = min(c.debounce.period, c.debounce.timeout or c.debounce.period)
            gathering[key], first_at[key] = Planned([event], at, at + wait), at
            out.runs.append(gathering[key])
            continue
        if c.batch_events is not None:
            b = c.batch_events
            key = _key(b.key, event, "batch_events key")
            run = gathering.get(key)
            if run is not None and run.start > at and len(run.events) < b.max_size:
                run.events.append(event)
                if len(run.events) >= b.max_size:
                    run.start = at
                continue
            gathering[key] = Planned([event], at, at if b.max_size == 1 else at + b.timeout)
            out.runs.append(gathering[key])
            continue
        start = at
        if c.throttle is not None:
            t = c.throttle
            key = _key(t.key, event, "throttle key")
            start = throttle.reserve(key, at, t.period, t.limit, t.burst, delay=True) or at
        out.runs.append(Planned([event], at, start))
        if c.singleton is not None:
            singles[_key(c.singleton.key, event, "singleton key")] = out.runs[-1]
    if c.timeouts is not None and c.timeouts.start is not None:
        for run in out.runs:
            if run.start - run.arrived > c.timeouts.start:
                run.cancelled = f"timeouts.start: not started within {c.timeouts.start}"
    return out
