"""A counter of free execution slots, so a worker pulls only what it can run now."""

from __future__ import annotations

import asyncio
import contextlib


class Slots:
    def __init__(self, size: int) -> None:
        self.size = size
        self.free = size
        self._changed = asyncio.Condition()

    async def wait_free(self, most: int) -> int:
        """Wait for at least one free slot; return how many (at most ``most``) are free."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.free > 0)
            return min(self.free, most)

    def take(self, n: int) -> None:
        self.free -= n

    async def give(self, n: int = 1) -> None:
        async with self._changed:
            self.free += n
            self._changed.notify_all()

    @property
    def busy(self) -> bool:
        return self.free < self.size

    async def idle_or(self, timeout: float) -> None:
        """Wait until nothing holds a slot, or ``timeout`` passes."""
        if not self.busy:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.drained(), timeout)

    async def drained(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.free == self.size)
