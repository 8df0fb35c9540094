"""A counter of free execution slots, so a worker pulls only what it can run now.

A pool is shared by the functions a worker hosts, and each function sees it through
its own ``Share`` (``slots.of(function_id)``): while the pool serves more than one
function, one function holds at most ``share`` of it (``FERRYMAN_FUNCTION_SLOT_SHARE``,
0.8 by default), so a flood of slow runs of one function cannot take every slot while
another function has work. With one function hosted, it may use the whole pool.
"""

from __future__ import annotations

import asyncio
import contextlib


class Slots:
    def __init__(self, size: int, share: float = 1.0) -> None:
        self._size = size
        self._free = size
        self.share = share
        self._changed = asyncio.Condition()
        self._shares: dict[str, Share] = {}

    def of(self, key: str) -> Slots:
        """This pool as one function sees it (the same object for the same key)."""
        if key not in self._shares:
            self._shares[key] = Share(self, key)
        return self._shares[key]

    @property
    def size(self) -> int:
        return self._size

    @property
    def free(self) -> int:
        return self._free

    @property
    def cap(self) -> int:
        """The most slots one function may hold."""
        if len(self._shares) < 2:
            return self.size
        return max(1, int(self.size * self.share))

    async def wait_free(self, most: int) -> int:
        """Wait for at least one free slot; return how many (at most ``most``) are free."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.free > 0)
            return min(self.free, most)

    def take(self, n: int) -> None:
        self._free -= n

    async def give(self, n: int = 1) -> None:
        async with self._changed:
            self._free += n
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


class Share(Slots):
    """One function's view of a pool: takes and gives the pool's slots, up to its cap."""

    def __init__(self, pool: Slots, key: str) -> None:
        self.pool = pool
        self.key = key
        self.used = 0

    @property
    def size(self) -> int:
        return self.pool.cap

    @property
    def free(self) -> int:
        return min(self.pool.free, self.pool.cap - self.used)

    async def wait_free(self, most: int) -> int:
        async with self.pool._changed:
            await self.pool._changed.wait_for(lambda: self.free > 0)
            return min(self.free, most)

    def take(self, n: int) -> None:
        self.used += n
        self.pool._free -= n

    async def give(self, n: int = 1) -> None:
        async with self.pool._changed:
            self.used -= n
            self.pool._free += n
            self.pool._changed.notify_all()

    @property
    def busy(self) -> bool:
        return self.used > 0

    async def drained(self) -> None:
        async with self.pool._changed:
            await self.pool._changed.wait_for(lambda: self.used == 0)
