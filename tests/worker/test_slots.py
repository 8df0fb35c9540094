"""Fair slots: one function cannot take all of a worker's slots while another has work."""

from __future__ import annotations

import asyncio

import pytest

from ferryman_worker.common.settings import SettingsError, load_settings
from ferryman_worker.transport.slots import Slots


async def test_one_function_holds_at_most_its_share_and_the_other_still_gets_slots() -> None:
    pool = Slots(10, share=0.8)
    slow, quick = pool.of("slow"), pool.of("quick")
    assert await slow.wait_free(64) == 8
    slow.take(8)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(slow.wait_free(64), 0.05)
    assert await quick.wait_free(64) == 2
    quick.take(2)
    await slow.give()
    assert await slow.wait_free(64) == 1
    assert pool.busy
    assert slow.busy


async def test_a_function_alone_may_use_the_whole_pool() -> None:
    pool = Slots(10, share=0.5)
    only = pool.of("only")
    assert await only.wait_free(64) == 10


async def test_a_give_wakes_a_function_waiting_for_its_share() -> None:
    pool = Slots(4, share=0.5)
    a, _ = pool.of("a"), pool.of("b")
    a.take(2)
    waiter = asyncio.create_task(a.wait_free(64))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    await a.give()
    assert await asyncio.wait_for(waiter, 1) == 1
    await a.give()
    await asyncio.wait_for(a.drained(), 1)
    await asyncio.wait_for(pool.drained(), 1)


@pytest.mark.parametrize("bad", ["0", "1.5", "-0.2", "half"])
def test_the_share_is_validated_at_start_up(bad: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERRYMAN_FUNCTION_SLOT_SHARE", bad)
    with pytest.raises(SettingsError, match="FERRYMAN_FUNCTION_SLOT_SHARE"):
        load_settings()
