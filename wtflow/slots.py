"""Slots that go to the most urgent waiter: the run's cap and each group's `max_parallel`.

    slots = Slots(2)
    async with slots.taken((-priority, index)):   # the smallest key is served first
        ...

An `asyncio.Semaphore` serves waiters in arrival order, and a free one goes to whoever asks
first: when a parallel group starts, its first children in tree order take the free slots,
whatever their priority. Here a request waits for the next turn of the loop, by which time
every node made ready in the same turn has asked too, and the free slots go to the smallest
keys among them; later, each freed slot is handed to the smallest key waiting (never to a
newcomer cutting in). `(-priority, tree index)` is the engine's key: higher priority first,
ties in tree order.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator
from typing import Any

Key = tuple[Any, ...]


class Slots:
    """A counting limit whose free slots go to the waiters with the smallest keys."""

    def __init__(self, count: int) -> None:
        if count < 1:
            raise ValueError(f"Slots({count}): there must be at least one slot")
        self._free = count
        self._waiting: list[tuple[Key, int, asyncio.Future[None]]] = []
        self._order = itertools.count()  # equal keys: first come, first served
        self._handing: asyncio.Handle | None = None

    @property
    def free(self) -> int:
        """Slots no one holds or has been handed."""
        return self._free

    async def acquire(self, key: Key) -> None:
        """Wait until a slot is handed to this request."""
        loop = asyncio.get_running_loop()
        granted: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._waiting, (key, next(self._order), granted))
        self._hand_out_soon(loop)
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self.release()  # handed over just as it was cancelled: the next waiter gets it
            raise

    def release(self) -> None:
        """Give a slot back; the smallest key waiting gets it on the loop's next turn."""
        self._free += 1
        if self._waiting:
            self._hand_out_soon(asyncio.get_running_loop())

    @contextlib.asynccontextmanager
    async def taken(self, key: Key) -> AsyncIterator[None]:
        """Hold a slot for the block."""
        await self.acquire(key)
        try:
            yield
        finally:
            self.release()

    def _hand_out_soon(self, loop: asyncio.AbstractEventLoop) -> None:
        # One handing-out per turn of the loop, after the tasks woken in this turn have asked.
        if self._handing is None:
            self._handing = loop.call_soon(self._hand_out)

    def _hand_out(self) -> None:
        self._handing = None
        while self._free and self._waiting:
            _, _, granted = heapq.heappop(self._waiting)
            if granted.done():  # its task was cancelled while it waited
                continue
            self._free -= 1
            granted.set_result(None)
