"""The priority-aware slots the engine takes before each attempt (wtflow/slots.py)."""

from __future__ import annotations

import asyncio

import pytest

from wtflow.slots import Slots

WAIT = 30.0  # a hang guard


async def _take_in_turn(slots: Slots, keys: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Every key asks in the same turn of the loop; each holder lets the next in only once it
    has noted its turn, so the order noted is the order the slots were handed out."""
    order: list[tuple[int, int]] = []

    async def take(key: tuple[int, int]) -> None:
        async with slots.taken(key):
            order.append(key)
            await asyncio.sleep(0)

    async with asyncio.timeout(WAIT), asyncio.TaskGroup() as tg:
        for key in keys:
            tg.create_task(take(key))
    return order


async def test_nodes_ready_together_start_by_key_not_by_arrival() -> None:
    """With one slot and every request made in one turn, the first to ask does not win: the
    smallest key (the engine's -priority, tree index) does, then the next, ..."""
    keys = [(0, 1), (-5, 2), (-1, 3), (-5, 0), (0, 4)]
    assert await _take_in_turn(Slots(1), keys) == sorted(keys)


async def test_a_freed_slot_goes_to_the_smallest_key_waiting() -> None:
    slots, order = Slots(1), []
    holding, free_it = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with slots.taken((0, 0)):
            holding.set()
            await free_it.wait()

    async def waiter(key: tuple[int, int]) -> None:
        async with slots.taken(key):
            order.append(key)

    async with asyncio.timeout(WAIT), asyncio.TaskGroup() as tg:
        tg.create_task(holder())
        await holding.wait()
        for key in [(0, 3), (-2, 9), (0, 1)]:
            tg.create_task(waiter(key))
        while len(slots._waiting) < 3:  # every waiter queued behind the holder
            await asyncio.sleep(0)
        free_it.set()
    assert order == [(-2, 9), (0, 1), (0, 3)]


async def test_two_slots_go_to_the_two_smallest_keys() -> None:
    slots, started = Slots(2), []
    release = asyncio.Event()

    async def take(key: tuple[int, int]) -> None:
        async with slots.taken(key):
            started.append(key)
            await release.wait()

    async with asyncio.timeout(WAIT), asyncio.TaskGroup() as tg:
        for key in [(0, 0), (0, 1), (-1, 2), (-3, 3)]:
            tg.create_task(take(key))
        while len(started) < 2:
            await asyncio.sleep(0)
        assert sorted(started) == [(-3, 3), (-1, 2)]
        assert slots.free == 0
        release.set()
    assert slots.free == 2


async def test_a_waiter_cancelled_after_it_was_handed_a_slot_passes_it_on() -> None:
    """Regression guard: a slot handed to a task that is cancelled before it resumes would be
    lost, and with one slot the run would wait forever."""
    slots = Slots(1)
    await slots.acquire((0, 0))
    first = asyncio.create_task(slots.acquire((0, 1)))
    second = asyncio.create_task(slots.acquire((0, 2)))
    while len(slots._waiting) < 2:
        await asyncio.sleep(0)
    slots.release()
    await asyncio.sleep(0)  # the hand-out runs in this turn; `first` resumes only in the next
    assert slots.free == 0
    assert len(slots._waiting) == 1
    assert not first.done()
    first.cancel()  # handed the slot, but not resumed yet
    async with asyncio.timeout(WAIT):
        with pytest.raises(asyncio.CancelledError):
            await first
        await second  # the slot went on
    assert slots.free == 0
    slots.release()
    assert slots.free == 1


async def test_a_waiter_cancelled_while_waiting_takes_no_slot() -> None:
    slots = Slots(1)
    await slots.acquire((0, 0))
    gone = asyncio.create_task(slots.acquire((-9, 1)))
    later = asyncio.create_task(slots.acquire((0, 2)))
    while len(slots._waiting) < 2:
        await asyncio.sleep(0)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    slots.release()
    async with asyncio.timeout(WAIT):
        await later
    assert slots.free == 0


def test_there_is_at_least_one_slot() -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        Slots(0)
