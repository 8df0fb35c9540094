"""Keeping ``ferryman dev``'s children alive: restart what dies, with backoff.

Each child (PostgreSQL, NATS, the worker) is a ``Child``: something that can start, say
whether it is alive, and say how it exited. The supervisor checks them twice a second;
a dead one is restarted after a delay that doubles while it keeps dying soon after
starting (1 s up to 30 s) and resets once it has stayed up a minute. Each restart prints
one line. Starts run on the main thread on purpose: a child's parent-death signal is
tied to the thread that forked it (see ``embedded.die_with_parent``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

FIRST_DELAY = 1.0
MAX_DELAY = 30.0
STABLE_SECONDS = 60.0
CHECK_SECONDS = 0.5


class Child(Protocol):
    @property
    def alive(self) -> bool: ...

    def exit_code(self) -> int | None: ...

    def start(self) -> None: ...


@dataclass
class _Watch:
    name: str
    child: Child
    started: float = field(default_factory=time.monotonic)
    delay: float = FIRST_DELAY
    paused: bool = False


def describe_exit(code: int | None) -> str:
    if code is None:
        return "exited"
    if code < 0:
        return f"was killed by signal {-code}"
    return f"exited with code {code}"


class Supervisor:
    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.watches: dict[str, _Watch] = {}
        self.restarts: dict[str, int] = {}

    def watch(self, name: str, child: Child) -> None:
        self.watches[name] = _Watch(name, child)
        self.restarts.setdefault(name, 0)

    def pause(self, name: str, paused: bool = True) -> None:
        """Stop watching ``name`` while it is stopped on purpose (a reload)."""
        watch = self.watches[name]
        watch.paused = paused
        if not paused:
            watch.started = time.monotonic()

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            for watch in list(self.watches.values()):
                if stopping.is_set():
                    return
                if watch.paused or watch.child.alive:
                    if time.monotonic() - watch.started > STABLE_SECONDS:
                        watch.delay = FIRST_DELAY
                    continue
                await self._restart(watch, stopping)
            await asyncio.sleep(CHECK_SECONDS)

    async def _restart(self, watch: _Watch, stopping: asyncio.Event) -> None:
        if time.monotonic() - watch.started > STABLE_SECONDS:
            watch.delay = FIRST_DELAY
        self.say(
            f"{watch.name} {describe_exit(watch.child.exit_code())}; "
            f"restarting it in {watch.delay:.0f}s"
        )
        try:
            await asyncio.wait_for(stopping.wait(), watch.delay)
            return
        except TimeoutError:
            pass
        watch.delay = min(watch.delay * 2, MAX_DELAY)
        watch.started = time.monotonic()
        self.restarts[watch.name] += 1
        try:
            watch.child.start()  # blocking, on the main thread: see the module docstring
        except Exception as exc:  # reported in one line, retried with backoff
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.say(f"{watch.name} did not start again ({first})")
            return
        self.say(f"{watch.name} is running again")
