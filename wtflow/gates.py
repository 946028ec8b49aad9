"""Waiting for nodes elsewhere in the tree (`after=`, an artifact read across branches).

A node's gate is settled once its whole subtree has ended, with what the nodes waiting for it
make of that: None (it succeeded, or failed where that is allowed: go on), or the reason they
are skipped (`upstream failed: ci/build`). A node settles once; every node does, so a waiter
that comes late (a dynamic child waiting for a node long done) has its answer at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence


class Gates:
    def __init__(self) -> None:
        self._problems: dict[int, str | None] = {}
        self._waiting: dict[int, asyncio.Event] = {}  # only the gates someone waits on

    def settle(self, index: int, problem: str | None) -> None:
        """Node `index` and its subtree ended; `problem`: why those waiting for it are skipped."""
        if index in self._problems:
            return  # the first word stands: a skipped node's, or the walk's on its way out
        self._problems[index] = problem
        event = self._waiting.pop(index, None)
        if event is not None:
            event.set()

    def problem(self, index: int) -> str | None:
        return self._problems.get(index)

    async def wait(self, indices: Sequence[int]) -> str | None:
        """Until all these have settled; the first problem among them, in the order given."""
        for index in indices:
            if index not in self._problems:
                await self._waiting.setdefault(index, asyncio.Event()).wait()
        return next((self._problems[i] for i in indices if self._problems[i]), None)


def problem_of_skip(path: str, reason: str | None) -> str:
    """What waiting for a skipped node means: skipped too, for the failure that skipped it."""
    if reason is not None and reason.startswith("upstream failed: "):
        return reason
    return f"upstream skipped: {path}"
