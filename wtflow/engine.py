"""The engine: walks the tree under asyncio, applies the failure policy and retries, emits events.

What it decides without running anything is in plan.py; a run's wiring (its folder, listeners
and records), context.py; stopping from above (budgets, the deadline, fail-fast), stops.py;
where bytes go, artifacts.py; how a process runs, the executor (executors/).
"""

from __future__ import annotations

import asyncio
import functools
import random
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from wtflow import plan
from wtflow.config import Config
from wtflow.context import (
    AttemptEvents,
    OutputSizes,
    close_out,
    dry_run,
    finish_run,
    make_plan,
    now,
    select,
    start_run,
)
from wtflow.decisions import Decision, PreviousRun
from wtflow.errors import WorkflowError, WtflowError
from wtflow.executables import PyFunc
from wtflow.executors import Executor, StartNotice, default_executor, run_attempt, stopped_code
from wtflow.growth import grow
from wtflow.kept import Kept, keep_attempt
from wtflow.listeners import Fanout, Listener
from wtflow.model import Placed, Workflow
from wtflow.reuse import reuse
from wtflow.runstate import Interrupts
from wtflow.status import Status
from wtflow.stops import Stops

EXIT_OK, EXIT_FAILED = plan.EXIT_OK, plan.EXIT_FAILED


class Engine:
    """Runs a workflow: `Engine(wf).run()` returns the exit code (0 ok, 1 a node failed).

    Interrupted by Ctrl-C or SIGTERM, `run()` stops every process, completes the record and
    returns 130 or 143. Each run gets its own run id (`run_id` is the latest's), folder and record.
    `resume` (a run id, a unique prefix, or "last"): reuse the results of that run's nodes that
    succeeded with the same digest, and run the rest. `only`, `tags` and `skip_tags` select nodes
    as `wtflow run --only/--tag/--skip-tag` do.
    """

    def __init__(
        self,
        workflow: Workflow,
        config: Config | None = None,
        dry_run: bool = False,
        *,
        listeners: Sequence[Listener] | None = None,
        console: Listener | None = None,
        executor: Executor | None = None,
        only: Callable[[Placed], bool] | None = None,
        resume: str | PreviousRun | None = None,
        params: Mapping[str, Any] | None = None,
        provenance: Mapping[str, Any] | None = None,
        tags: Collection[str] = (),
        skip_tags: Collection[str] = (),
    ) -> None:
        self.workflow, self.dry_run, self.resume = workflow, dry_run, resume
        self.run_dir: Path | None
        self.counts: dict[str, int]
        self.config = config if config is not None else Config.from_env()
        self.run_id, self.run_dir, self.counts = "", None, {}
        self.problems: list[str] = []
        self.notes: list[str] = []  # what the run's end says besides the summary (a deadline passed)
        self.params = dict(params or {})  # the workflow function's arguments, recorded with the run
        self.provenance = None if provenance is None else dict(provenance)  # where the run came from
        self._listeners, self._console, self._only = list(listeners or []), console, only
        self._tags, self._skip_tags = _tag_set(tags, "tags"), _tag_set(skip_tags, "skip_tags")
        plan.check_tags(plan.tags_in(workflow), {"tags=": self._tags, "skip_tags=": self._skip_tags})
        self._executor = executor if executor is not None else default_executor(self.config)
        self._fanout = Fanout([], self.problems)
        # A second interrupt ends every process at once, rather than after its kill grace.
        self._interrupts = Interrupts(hurry=getattr(self._executor, "hurry", None))

    def run(self, *, resume: str | PreviousRun | None = None) -> int:
        """Run to the end and return the exit code; for scripts (`raise SystemExit(engine.run())`)."""
        self.resume = resume if resume is not None else self.resume
        try:
            return self._interrupts.run(self.run_async)
        finally:
            close_out(self._executor, self._fanout, self.notes, self.problems)

    def decisions(self) -> dict[str, Decision]:
        """What each node would do and why, by path, running nothing (`--dry-run --json`)."""
        selected, waiting = select(self.workflow, self._only, self._tags, self._skip_tags)
        made = make_plan(self.workflow, self.config, selected, self.resume, waiting)
        return {self.workflow.placed[i].path_str: d for i, d in made.decisions.items()}

    async def run_async(self) -> int:
        """Run to the end inside the caller's event loop; cancellation stops every process."""
        selected, waiting = select(self.workflow, self._only, self._tags, self._skip_tags)
        if self.dry_run:
            sys.stdout.write(dry_run(self.workflow, self.config, selected, self.resume, waiting))
            sys.stdout.flush()
            return EXIT_OK
        self.problems, self.notes = [], []
        self._fanout = Fanout([], self.problems)
        ctx = await start_run(self.workflow, self.config, self._executor, self._fanout, self._listeners,
                              self._console, selected, self.resume, params=self.params,
                              provenance=self.provenance, waits=waiting)  # fmt: skip
        self.run_id, self.run_dir, self._ctx, self._stops = ctx.run_id, ctx.run_dir, ctx, Stops(ctx)
        outcome, deadline = Status.CANCELLED, self.config.run.deadline
        try:
            try:
                work = functools.partial(self._visit, self.workflow.placed[0])
                outcome, late = await self._stops.within(None, deadline, work, self._run_always)
            except asyncio.CancelledError:  # Ctrl-C, SIGTERM: cleanup still runs; a second one ends it
                await self._run_always(self._stops.pending_always(plan.subtree(self.workflow, 0)))
                raise
            if late:
                self.notes.append(
                    f"{self.workflow.name}: the run's deadline of {deadline:g}s (run.deadline) passed; "
                    "what was running was stopped and the rest skipped"
                )
        finally:
            if outcome is Status.CANCELLED:
                for index in ctx.state.unfinished():
                    ctx.finished(index, Status.CANCELLED)
            status, code = plan.verdict(outcome, self._interrupts.signal)
            self.counts = await finish_run(ctx, self._executor, status, code)
        return plan.verdict(outcome)[1]

    # -- the walk ------------------------------------------------------------------------

    async def _visit(self, p: Placed) -> Status:
        """Run a node and its subtree once what it waits for has ended; returns the outcome that
        counts for its parent (SKIPPED: what it waited for failed, and so it did not run)."""
        ctx = self._ctx
        if p.index in ctx.waits and (ctx.selected is None or p.index in ctx.selected):
            problem = await ctx.gates.wait(ctx.waits[p.index])
            if problem is not None and not (p.node.always or ctx.keep_going):
                self._stops.skip(p, problem)
                return Status.SKIPPED
        try:
            outcome = await self._walk(p)
        except BaseException:
            ctx.gates.settle(p.index, f"upstream failed: {p.path_str}")
            raise
        ctx.gates.settle(p.index, f"upstream failed: {p.path_str}" if outcome.is_failure else None)
        return outcome

    async def _walk(self, p: Placed) -> Status:
        ctx, stops, node = self._ctx, self._stops, p.node
        allowed = ctx.policies[p.index].allow_failure
        if ctx.selected is not None and p.index not in ctx.selected:
            stops.skip(p, "not selected")
            return Status.SUCCEEDED
        own, children = Status.SUCCEEDED, self.workflow.children_of[p.index]
        holds = await ctx.condition(p)  # decided now, from what ran before it; None: it raised
        if holds is None:
            await self._after_failure(p, children)
            return Status.SUCCEEDED if allowed else Status.FAILED
        if not holds:
            stops.skip(p, "condition false")
            return Status.SUCCEEDED
        if node.executable is not None:
            own = await self._execute(p)
            if own.is_failure and not ctx.keep_going:
                await self._after_failure(p, children)
                return Status.SUCCEEDED if allowed else own
        if not children:
            return Status.SUCCEEDED if allowed else own
        if node.executable is None:
            ctx.state.update(p.index, status=Status.RUNNING)
        budget = ctx.policies[p.index].budget
        try:
            work = functools.partial(self._children, p, children)
            outcome, spent = await stops.within(p.index, budget, work, self._run_always)
        except asyncio.CancelledError:
            if node.executable is None:  # a group stopped from above ends with what stopped it
                ctx.finished(p.index, stops.stop_status(p.index))
            raise
        if node.executable is None:
            inherited = (ctx.state[c.index].status for c in children if c.node.allow_failure is None)
            ctx.finished(p.index, plan.group_status(outcome, inherited, spent))
        if own.is_failure and not outcome.is_failure:
            outcome = own
        return Status.SUCCEEDED if allowed else outcome

    async def _after_failure(self, p: Placed, children: list[Placed]) -> None:
        for child in children:  # the node failed: its children do not run, but for cleanup
            if child.node.always:
                await self._visit(child)
            else:
                self._stops.skip(child, f"upstream failed: {p.path_str}")

    async def _children(self, p: Placed, children: list[Placed]) -> Status:
        if not p.node.parallel:
            outcome, stop = Status.SUCCEEDED, None  # why the rest of the sequence is skipped
            for k, child in enumerate(children):
                if stop is not None and not child.node.always:
                    self._stops.skip(child, stop)
                    continue
                if stop is None and k + 1 < len(children):
                    self._ctx.make_ahead(children[k + 1], after=child)
                result = await self._visit(child)
                if result.is_failure:
                    outcome = result if stop is None else outcome
                    keep_going = self._ctx.keep_going
                    stop = stop or (None if keep_going else f"upstream failed: {child.path_str}")
                elif result is Status.SKIPPED:  # what it waited for failed: what follows it waits too
                    stop = stop or self._ctx.gates.problem(child.index)
            return outcome
        if not (p.node.fail_fast or self.config.run.fail_fast):
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(self._visit(c)) for c in children]
            return next((t.result() for t in tasks if t.result().is_failure), Status.SUCCEEDED)
        failed = await self._stops.fail_fast(p, children, self._visit)
        if failed is None:
            return Status.SUCCEEDED
        inside = plan.subtree(self.workflow, p.index)[1:]
        await self._run_always(self._stops.stopped(inside, Status.CANCELLED, "fail-fast"))
        return failed

    async def _run_always(self, nodes: list[Placed]) -> None:
        for p in nodes:  # one after another, each bounded by its own time limit
            if self._ctx.state[p.index].status is Status.PENDING:
                await self._visit(p)

    # -- one node's executable, with retries -----------------------------------------------

    async def _execute(self, p: Placed) -> Status:
        ctx, policy, attempt = self._ctx, self._ctx.policies[p.index], 0
        reused = reuse(ctx, p)
        if reused is not None:
            return reused
        while True:
            attempt += 1
            async with ctx.slots_for(policy, p.index):
                events = AttemptEvents(ctx, p, attempt)  # its clock starts with the slot, not before
                halted = self._stops.halted(p.index)
                if not halted:
                    status, code, sizes = await self._attempt(p, policy, events)
            if halted:  # a failed sibling's slot came free as its fail-fast group began to stop
                await asyncio.Event().wait()  # the group's cancellation is on its way
            retry = plan.should_retry(policy, status, code, attempt)
            delay = plan.retry_delay(policy, attempt, random.uniform) if retry else 0.0
            retry_at = now() + timedelta(seconds=delay) if retry else None
            ended = events.finished(status, code, sizes, retry_at)
            ctx.state.update(p.index, status=status, exit_code=code, attempts=attempt, ended_at=ended)
            if not retry:
                return status
            ctx.state.update(p.index, status=Status.RUNNING)  # Ctrl-C while it waits: cancelled, not failed
            await asyncio.sleep(delay)

    async def _attempt(
        self, p: Placed, policy: plan.Policy, events: AttemptEvents
    ) -> tuple[Status, int | None, OutputSizes]:
        ctx, executable, attempt = self._ctx, p.node.executable, events.attempt
        output = ctx.open_attempt(p, events)
        sinks, kept = output.sinks(events.chunk if ctx.fanout.wants_output else None), Kept(())
        request = ctx.request(p, policy, attempt, output.folder)
        try:
            output.create()
            result = await run_attempt(self._executor, request, sinks=sinks, on_start=events.start,
                                       on_stopping=events.stopping)  # fmt: skip
            if result.error is not None:
                if not events.announced:  # it could not start: its attempt is recorded all the same
                    events.start(StartNotice(host="", pid=None))
                await sinks["stderr"].write(f"wtflow: {result.error}\n".encode())
            elif p.node.artifacts or isinstance(executable, PyFunc):
                kept = await keep_attempt(p.node, output.folder, policy.cwd, succeeded=result.code == 0)
                if kept.problem is None and result.code == 0 and isinstance(executable, PyFunc):
                    kept = Kept(kept.files, grow(ctx, p, output.folder))  # the nodes it returned, if any
                if kept.problem is not None:
                    await sinks["stderr"].write(f"wtflow: {kept.problem}\n".encode())
                output.kept = kept.files
        except asyncio.CancelledError as e:
            stopped = self._stops.stop_status(p.index)
            # A time limit from above says how the process ended, as the node's own does; a
            # cancellation (Ctrl-C, a fail-fast sibling) is the run's doing, not the node's.
            code = stopped_code(e) if stopped is Status.TIMED_OUT else None
            ended = events.finished(stopped, code, output.sizes())
            ctx.state.update(p.index, status=stopped, exit_code=code, attempts=attempt, ended_at=ended)
            raise
        finally:
            self.problems.extend(await output.close(p.path_str))
        return plan.attempt_status(result, kept.problem), result.code, output.sizes()


def _tag_set(tags: Collection[str], name: str) -> frozenset[str]:
    if isinstance(tags, str):  # as Node(tags=) refuses it: not the tags d and b
        raise WorkflowError(f"Engine {name}={tags!r} is not a set of tags; use e.g. {name}={{{tags!r}}}")
    return frozenset(tags)


__all__ = ["Engine", "WtflowError"]
