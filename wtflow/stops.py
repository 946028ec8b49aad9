"""Stopping from above: what ends a node that did not end by itself, and what becomes of the rest.

Three things stop nodes from outside: a group's budget (its `timeout`), the run's deadline, and
a failure in a fail-fast group. `Stops` keeps them for one run and answers, for a node, whether
it may still start and how it ends when stopped; `stopped()` settles what a stop left behind,
keeping back the `always` nodes, which run all the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from wtflow import plan
from wtflow.context import RunContext
from wtflow.model import Placed
from wtflow.status import Status


class FailedFast(Exception):
    """A child of a fail-fast group failed: raised in its task so the TaskGroup stops the rest."""

    def __init__(self, status: Status) -> None:
        super().__init__(status)
        self.status = status


class Stops:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.budgets: dict[int, asyncio.Timeout] = {}  # of groups with a timeout, by index
        self.deadline: asyncio.Timeout | None = None  # the run's
        self.failed_fast: set[int] = set()  # fail-fast groups stopping: nothing new starts in them

    def halted(self, index: int) -> bool:
        """A fail-fast group around the node has failed: nothing more may start in it."""
        return any(i in self.failed_fast for i in self._ancestors(index))

    def stop_status(self, index: int) -> Status:
        """How a node stopped from above ends: timed out if a budget around it ran out (or the
        deadline), else cancelled (a fail-fast sibling failed, Ctrl-C)."""
        scopes = [self.budgets.get(i) for i in (index, *self._ancestors(index))] + [self.deadline]
        return Status.TIMED_OUT if any(s is not None and s.expired() for s in scopes) else Status.CANCELLED

    def stopped(self, indices: range, status: Status, reason: str) -> list[Placed]:
        """After these nodes were stopped: what was still running (waiting for a retry, a group
        mid-walk) ends as `status`, what had not started is skipped for `reason`, except the
        `always` nodes (and their subtrees), returned to be run now."""
        state, later = self.ctx.state, self.pending_always(indices)
        kept = {i for p in later for i in plan.subtree(self.ctx.workflow, p.index)}
        for index in indices:
            current = state[index].status
            if current is Status.RUNNING:
                self.ctx.finished(index, status)
            elif current is Status.PENDING and index not in kept:
                self.ctx.finished(index, Status.SKIPPED, reason)
        return later

    def pending_always(self, indices: range) -> list[Placed]:
        """The `always` nodes among these that have not run, outermost only, in tree order."""
        found, index, workflow = [], indices.start, self.ctx.workflow
        while index < indices.stop:
            p = workflow.placed[index]
            if p.node.always and self.ctx.state[index].status is Status.PENDING:
                found.append(p)
                index = plan.subtree(workflow, index).stop  # its subtree runs with it
            else:
                index += 1
        return found

    def skip(self, p: Placed, reason: str) -> None:
        for index in plan.subtree(self.ctx.workflow, p.index):
            if self.ctx.state[index].status is Status.PENDING:
                self.ctx.finished(index, Status.SKIPPED, reason)

    async def fail_fast(
        self, group: Placed, children: Sequence[Placed], visit: Callable[[Placed], Awaitable[Status]]
    ) -> Status | None:
        """Run the children at once; the first failure stops the others. Returns that failure."""

        async def guarded(child: Placed) -> Status:
            result = await visit(child)
            if result.is_failure:
                self.failed_fast.add(group.index)  # before the TaskGroup cancels the siblings
                raise FailedFast(result)
            return result

        failed: list[Status] = []
        try:
            async with asyncio.TaskGroup() as tg:
                for c in children:
                    tg.create_task(guarded(c))
        except* FailedFast as stop:
            failed.extend(e.status for e in stop.exceptions if isinstance(e, FailedFast))
        self.failed_fast.discard(group.index)  # stopped now: its cleanup may start
        return failed[0] if failed else None

    def _ancestors(self, index: int) -> list[int]:
        found, i = [], self.ctx.workflow.placed[index].parent
        while i is not None:
            found.append(i)
            i = self.ctx.workflow.placed[i].parent
        return found
