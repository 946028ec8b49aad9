"""The engine: walks the tree under asyncio, applies the failure policy and retries, emits events.

What it decides without running anything is in plan.py; where bytes go, artifacts.py; how a
process runs, the executor (executors/); who hears about it, the listeners (listeners.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from wtflow import plan
from wtflow.artifacts import ArtifactStore, prepare_state_dir, reuse_outputs
from wtflow.config import Config
from wtflow.decisions import REUSE, Decision, PreviousRun, decide, render
from wtflow.digests import workflow_digests
from wtflow.errors import UsageError, WtflowError
from wtflow.events import (
    KeptFile,
    NodeFinished,
    NodeStarted,
    NodeStopping,
    OutputReceived,
    RunFinished,
    RunStarted,
    node_spec,
)
from wtflow.executables import PyFunc
from wtflow.executors import (
    AttemptId,
    ExecRequest,
    ExecResult,
    Executor,
    StartNotice,
    default_executor,
    run_attempt,
)
from wtflow.kept import Kept, bind, keep
from wtflow.listeners import Fanout, Listener, default_listeners
from wtflow.model import Placed, Workflow
from wtflow.params import plain_params
from wtflow.reads import check_reads
from wtflow.runstate import Interrupts, RunState
from wtflow.status import Status

EXIT_OK, EXIT_FAILED = plan.EXIT_OK, plan.EXIT_FAILED
OutputSizes = tuple[int, int, tuple[tuple[str, int], ...] | None, tuple[KeptFile, ...]]


class _FailedFast(Exception):
    """A child of a fail-fast group failed: raised in its task so the TaskGroup stops the rest."""

    def __init__(self, status: Status) -> None:
        super().__init__(status)
        self.status = status


def _now() -> datetime:
    return datetime.now(UTC)


class Engine:
    """Runs a workflow: `Engine(wf).run()` returns the exit code (0 ok, 1 a node failed).

    Interrupted by Ctrl-C or SIGTERM, `run()` stops every process, completes the record and
    returns 130 or 143. Each run gets its own run id (`run_id` is the latest's), folder and record.
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
    ) -> None:
        self.workflow = workflow
        self.config = config if config is not None else Config.from_env()
        self.dry_run = dry_run
        self.run_id = ""
        self.run_dir: Path | None = None
        self.problems: list[str] = []
        self.notes: list[str] = []  # what the run's end says besides the summary (a deadline passed)
        self.counts: dict[str, int] = {}
        self._extra_listeners = list(listeners or [])
        self._console = console
        self._fanout = Fanout([], self.problems)
        self._executor = executor if executor is not None else default_executor(self.config)
        self._only = only
        self.provenance = None if provenance is None else dict(provenance)  # where the run came from
        self.params = dict(params or {})  # the workflow function's arguments, recorded with the run
        self._interrupts = Interrupts()
        self.resume = resume
        self._decisions: dict[int, Decision] = {}
        self._digests: dict[int, str] = {}
        self._previous: PreviousRun | None = None
        self._run_scope: asyncio.Timeout | None = None  # the run's deadline

    # -- the two entry points ------------------------------------------------------------

    def run(self, *, resume: str | PreviousRun | None = None) -> int:
        """Run to the end and return the exit code; for scripts (`raise SystemExit(engine.run())`).

        `resume` (a run id, a unique prefix, or "last"): reuse the results of that run's nodes
        that succeeded with the same digest, and run the rest."""
        if resume is not None:
            self.resume = resume
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise UsageError(
                "Engine.run() was called inside a running event loop; use await engine.run_async()"
            )
        try:
            with asyncio.Runner() as runner:
                return runner.run(self._main())
        except KeyboardInterrupt:  # a second Ctrl-C; asyncio.Runner has let the run's clean-up finish
            return 128 + signal.SIGINT
        except asyncio.CancelledError:
            if self._interrupts.signal is None:
                raise
            return 128 + self._interrupts.signal
        finally:
            self._executor.abandon()  # a second Ctrl-C ended the loop at once: nothing may outlive us
            while self._fanout.close_next():
                pass
            for note in self.notes:
                sys.stderr.write(f"wtflow: {note}\n")
            for problem in self.problems:  # e.g. the database went away: the output is still on disk
                sys.stderr.write(f"wtflow: warning: {problem}\n")

    async def _main(self) -> int:
        task = asyncio.current_task()
        assert task is not None
        with self._interrupts.watching(task):
            return await self.run_async()

    async def run_async(self) -> int:
        """Run to the end inside the caller's event loop; cancellation stops every process."""
        selected = plan.selection(self.workflow, self._only)
        check_reads(self.workflow, selected)
        if self.dry_run:
            self._plan(selected)
            shown = render(self.workflow, self._decisions) if self.resume else self.workflow.render(selected)
            sys.stdout.write(shown)
            sys.stdout.flush()
            return EXIT_OK
        state = await self._start(selected)
        outcome = Status.CANCELLED
        root, deadline = self.workflow.placed[0], self.config.run.deadline
        everything = plan.subtree(self.workflow, 0)
        try:
            try:
                async with asyncio.timeout(deadline) as scope:
                    self._run_scope = scope
                    outcome = await self._visit(root, state, selected)
            except TimeoutError:
                self.notes.append(
                    f"{self.workflow.name}: the run's deadline of {deadline:g}s (run.deadline) passed; "
                    "what was running was stopped and the rest skipped"
                )
                await self._run_always(
                    state, self._stopped(state, everything, Status.TIMED_OUT, "deadline"), selected
                )
                outcome = Status.TIMED_OUT
            except asyncio.CancelledError:  # Ctrl-C, SIGTERM: cleanup still runs; a second one ends it
                await self._run_always(state, self._pending_always(state, everything), selected)
                raise
        finally:
            if outcome is Status.CANCELLED:
                for index in state.unfinished():
                    self._node_finished(state, index, Status.CANCELLED)
            await self._finish(state, outcome)
        return plan.verdict(outcome)[1]

    def decisions(self) -> dict[str, Decision]:
        """What each node would do and why, by path, running nothing (`--dry-run --json`)."""
        selected = plan.selection(self.workflow, self._only)
        check_reads(self.workflow, selected)
        self._plan(selected)
        return {self.workflow.placed[i].path_str: d for i, d in self._decisions.items()}

    def _plan(self, selected: frozenset[int] | None) -> None:
        """Each node's digest, and with `resume`, what it does and why (decisions.py)."""
        digests = workflow_digests(self.workflow)
        self._digests = {i: str(d) for i, d in digests.items()}
        previous = self.resume
        if isinstance(previous, str):
            from wtflow.previous import previous_run  # the record's read side, only when resuming

            previous = previous_run(self.config, self.workflow.name, previous)
        self._previous = previous
        self._decisions = decide(self.workflow, digests, selected, previous)

    # -- start and finish ----------------------------------------------------------------

    async def _start(self, selected: frozenset[int] | None) -> RunState:
        artifacts_dir = await prepare_state_dir(self.config)
        await self._executor.open()  # a cluster is reached before anything starts
        self.run_id, self.problems, self.notes = uuid.uuid4().hex, [], []
        listeners = [
            *default_listeners(self.config, console=self._console, workflow=self.workflow),
            *self._extra_listeners,
        ]
        self._fanout = Fanout(listeners, self.problems)
        # After the recorder opened the record: a killed run to resume has been settled from its journal.
        self._plan(selected)
        self._store = ArtifactStore(artifacts_dir)
        self._slots = asyncio.Semaphore(plan.slots(self.config, self._executor.capacity))
        self._policies = plan.policies(self.workflow, self.config)
        self._keep_going = self.config.run.ignore_failure and not self.config.run.fail_fast
        self._group_slots = {
            p.index: asyncio.Semaphore(p.node.max_parallel)
            for p in self.workflow.placed
            if p.node.max_parallel is not None
        }
        self._scopes: dict[int, asyncio.Timeout] = {}  # the budgets of groups with a timeout
        self._failed_fast: set[int] = set()
        self._run_scope = None
        self._running = 0
        state = RunState(self.workflow, self.run_id)
        started_at = _now()
        self.run_dir = await self._store.create_run_dir(self.workflow.name, self.run_id, started_at)
        # Recorded for a resumed run only: elsewhere every node runs, for no reason worth keeping.
        decisions = {i: str(d) for i, d in self._decisions.items()} if self._previous else {}
        specs = tuple(
            node_spec(p, decisions.get(p.index), self._policies[p.index].allow_failure)
            for p in self.workflow.placed
        )
        self._fanout.emit(
            RunStarted(
                self.run_id,
                self.workflow.name,
                started_at,
                self.run_dir,
                specs,
                self.config.describe(),
                None if self._previous is None else self._previous.run_id,
                params=plain_params(self.params),
                provenance=self.provenance,
            )
        )
        return state

    async def _finish(self, state: RunState, outcome: Status) -> None:
        self.counts = state.counts()
        status, code = plan.verdict(outcome, self._interrupts.signal)
        self._fanout.emit(RunFinished(self.run_id, status, code, _now(), dict(self.counts)))
        await self._executor.aclose()
        while await asyncio.to_thread(self._fanout.close_next):  # a recorder may take its time
            pass

    def _node_finished(self, state: RunState, index: int, status: Status, reason: str | None = None) -> None:
        """A node that ends without (another) attempt: skipped, cancelled, or a grouping node."""
        result = state.update(index, status=status)  # a node cancelled in its retry wait keeps its exit code
        p = self.workflow.placed[index]
        self._fanout.emit(
            NodeFinished(
                self.run_id,
                index,
                p.path,
                0,
                status,
                result.exit_code,
                result.started_at,
                _now(),
                reason=reason,
            )
        )

    # -- the walk ------------------------------------------------------------------------

    async def _visit(self, p: Placed, state: RunState, selected: frozenset[int] | None) -> Status:
        """Run a node and its subtree; returns the outcome that counts for its parent."""
        node, keep_going = p.node, self._keep_going
        allowed = self._policies[p.index].allow_failure
        if selected is not None and p.index not in selected:
            self._skip(state, p, "not selected")
            return Status.SUCCEEDED
        own = Status.SUCCEEDED
        children = self.workflow.children_of[p.index]
        if node.executable is not None:
            own = await self._execute(p, state)
            if own.is_failure and not keep_going:
                for child in children:
                    if child.node.always:
                        await self._visit(child, state, selected)
                    else:
                        self._skip(state, child, f"upstream failed: {p.path_str}")
                return Status.SUCCEEDED if allowed else own
        if not children:
            return Status.SUCCEEDED if allowed else own
        if node.executable is None:
            state.update(p.index, status=Status.RUNNING)
        budget = self._policies[p.index].budget
        spent = False  # its own budget ran out (a child's time limit is that child's, not the group's)
        try:
            if budget is None:
                outcome = await self._children(p, children, state, selected)
            else:
                async with asyncio.timeout(budget) as scope:
                    self._scopes[p.index] = scope
                    outcome = await self._children(p, children, state, selected)
        except TimeoutError:  # its budget ran out: what ran was stopped (timed_out) on the way here
            inside = plan.subtree(self.workflow, p.index)[1:]
            await self._run_always(
                state, self._stopped(state, inside, Status.TIMED_OUT, f"timed out: {p.path_str}"), selected
            )
            outcome, spent = Status.TIMED_OUT, True
        except asyncio.CancelledError:
            if node.executable is None:  # a group stopped from above ends with what stopped it
                self._node_finished(state, p.index, self._stop_status(p.index))
            raise
        if node.executable is None:
            # A child allowed to fail only because an ancestor is still shows its group failed
            # (allowed), up to the node that allows it.
            shown = outcome
            if not outcome.is_failure:
                inherited = (state[c.index].status for c in children if c.node.allow_failure is None)
                shown = next((s for s in inherited if s.is_failure), outcome)
            group = Status.FAILED if shown.is_failure else Status.SUCCEEDED
            if shown is Status.CANCELLED or spent:
                group = shown
            self._node_finished(state, p.index, group)
        if own.is_failure and not outcome.is_failure:
            outcome = own
        return Status.SUCCEEDED if allowed else outcome

    async def _children(
        self, p: Placed, children: list[Placed], state: RunState, selected: frozenset[int] | None
    ) -> Status:
        if not p.node.parallel:
            outcome, stopper = Status.SUCCEEDED, None  # the child whose failure stops the sequence
            for child in children:
                if stopper is not None and not child.node.always:
                    self._skip(state, child, f"upstream failed: {stopper.path_str}")
                    continue
                result = await self._visit(child, state, selected)
                if result.is_failure:
                    outcome = result if stopper is None else outcome
                    if not self._keep_going:
                        stopper = stopper or child
            return outcome
        if not (p.node.fail_fast or self.config.run.fail_fast):
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(self._visit(c, state, selected)) for c in children]
            return next((t.result() for t in tasks if t.result().is_failure), Status.SUCCEEDED)

        async def guarded(child: Placed) -> Status:
            result = await self._visit(child, state, selected)
            if result.is_failure:
                self._failed_fast.add(p.index)  # before the TaskGroup cancels the siblings
                raise _FailedFast(result)
            return result

        failed: list[Status] = []
        try:
            async with asyncio.TaskGroup() as tg:
                for c in children:
                    tg.create_task(guarded(c))
        except* _FailedFast as group:
            failed.extend(e.status for e in group.exceptions if isinstance(e, _FailedFast))
        if failed:
            self._failed_fast.discard(p.index)  # stopped now: its cleanup may start
            inside = plan.subtree(self.workflow, p.index)[1:]
            await self._run_always(
                state, self._stopped(state, inside, Status.CANCELLED, "fail-fast"), selected
            )
        return failed[0] if failed else Status.SUCCEEDED

    def _halted(self, index: int) -> bool:
        """A fail-fast group around the node has failed: nothing more may start in it."""
        i: int | None = self.workflow.placed[index].parent
        while i is not None:
            if i in self._failed_fast:
                return True
            i = self.workflow.placed[i].parent
        return False

    def _stop_status(self, index: int) -> Status:
        """How a node stopped from above ends: timed out if a budget around it ran out,
        else cancelled (a fail-fast sibling failed, Ctrl-C)."""
        i: int | None = index
        while i is not None:
            scope = self._scopes.get(i)
            if scope is not None and scope.expired():
                return Status.TIMED_OUT
            i = self.workflow.placed[i].parent
        if self._run_scope is not None and self._run_scope.expired():
            return Status.TIMED_OUT
        return Status.CANCELLED

    def _stopped(self, state: RunState, indices: range, status: Status, reason: str) -> list[Placed]:
        """After these nodes were stopped: what was still running (waiting for a retry, a group
        mid-walk) ends as `status`, what had not started is skipped for `reason`, except the
        `always` nodes (and their subtrees), returned to be run now."""
        later = self._pending_always(state, indices)
        kept = {i for p in later for i in plan.subtree(self.workflow, p.index)}
        for index in indices:
            current = state[index].status
            if current is Status.RUNNING:
                self._node_finished(state, index, status)
            elif current is Status.PENDING and index not in kept:
                self._node_finished(state, index, Status.SKIPPED, reason)
        return later

    def _pending_always(self, state: RunState, indices: range) -> list[Placed]:
        """The `always` nodes among these that have not run, outermost only, in tree order."""
        found, index = [], indices.start
        while index < indices.stop:
            p = self.workflow.placed[index]
            if p.node.always and state[index].status is Status.PENDING:
                found.append(p)
                index = plan.subtree(self.workflow, index).stop  # its subtree runs with it
            else:
                index += 1
        return found

    async def _run_always(
        self, state: RunState, nodes: list[Placed], selected: frozenset[int] | None
    ) -> None:
        for p in nodes:  # one after another, each bounded by its own time limit
            if state[p.index].status is Status.PENDING:
                await self._visit(p, state, selected)

    def _skip(self, state: RunState, p: Placed, reason: str) -> None:
        for index in plan.subtree(self.workflow, p.index):
            if state[index].status is Status.PENDING:
                self._node_finished(state, index, Status.SKIPPED, reason)

    # -- one node's executable, with retries -----------------------------------------------

    async def _execute(self, p: Placed, state: RunState) -> Status:
        decision = self._decisions.get(p.index)
        if decision is not None and decision.action == REUSE:
            try:
                return self._reuse(p, state, decision)
            except OSError as e:  # the earlier files went away or cannot be linked: run it instead
                self.problems.append(f"node {p.path_str}: its earlier output cannot be reused ({e}); it ran")
        policy = self._policies[p.index]
        attempt = 0
        while True:
            attempt += 1
            async with contextlib.AsyncExitStack() as slots:
                for group in policy.limits:  # outermost first, the run's own last: no cycle of waits
                    await slots.enter_async_context(self._group_slots[group])
                await slots.enter_async_context(self._slots)
                halted = self._halted(p.index)
                if not halted:
                    status, result, started, sizes = await self._attempt(p, state, policy, attempt)
            if halted:  # a failed sibling's slot came free as its fail-fast group began to stop
                await asyncio.Event().wait()  # the group's cancellation is on its way
                raise AssertionError("unreachable")
            code, ended = result.code, _now()
            retry = plan.should_retry(policy, status, code, attempt)
            delay = plan.retry_delay(policy, attempt, random.uniform) if retry else 0.0
            state.update(p.index, status=status, exit_code=code, attempts=attempt, ended_at=ended)
            self._fanout.emit(
                NodeFinished(
                    self.run_id, p.index, p.path, attempt, status, code, started, ended, retry, *sizes,
                    retry_at=ended + timedelta(seconds=delay) if retry else None,
                )
            )  # fmt: skip
            if not retry:
                return status
            state.update(p.index, status=Status.RUNNING)  # Ctrl-C while it waits: cancelled, not failed
            await asyncio.sleep(delay)

    def _reuse(self, p: Placed, state: RunState, decision: Decision) -> Status:
        """The node's result in the run being resumed stands: its files are linked into this run's
        folder (later nodes read them as if it had just run), recorded as an attempt of no process."""
        assert self.run_dir is not None
        assert decision.reused is not None
        assert self._previous is not None
        output = self._store.attempt_output(self.run_dir, p.path, 1)
        files = reuse_outputs(dict(decision.reused.outputs), output.folder)
        for name, path in files.items():
            p.node.artifact(name).bind(path)
        now = _now()
        sizes = {name: path.stat().st_size for name, path in files.items()}
        state.update(p.index, status=Status.SUCCEEDED, exit_code=0, attempts=1, started_at=now, ended_at=now)
        self._fanout.emit(
            NodeStarted(self.run_id, p.index, p.path, 1, now, files.get("stdout"), files.get("stderr"), None,
                        None, self._digests.get(p.index), self._previous.run_id)
        )  # fmt: skip
        order = tuple((name, size) for name, size in sizes.items() if size) or ()
        self._fanout.emit(
            NodeFinished(self.run_id, p.index, p.path, 1, Status.SUCCEEDED, 0, now, now, False,
                         sizes.get("stdout", 0), sizes.get("stderr", 0), order)
        )  # fmt: skip
        return Status.SUCCEEDED

    async def _attempt(
        self, p: Placed, state: RunState, policy: plan.Policy, attempt: int
    ) -> tuple[Status, ExecResult, datetime, OutputSizes]:
        assert self.run_dir is not None
        assert p.node.executable is not None
        output = self._store.attempt_output(self.run_dir, p.path, attempt)
        for name, f in output.files.items():
            p.node.artifact(name).bind(f.path)
        fanout = self._fanout

        def on_chunk(stream: str, data: bytes) -> None:
            fanout.emit_output(OutputReceived(self.run_id, p.index, p.path, stream, data))

        sinks = output.sinks(on_chunk if fanout.wants_output else None)
        started = _now()
        state.update(p.index, status=Status.RUNNING, started_at=state[p.index].started_at or started)
        env = plan.attempt_env(policy, self.run_id, p, attempt, output.folder)
        executable, changes = plan.with_paths(p.node.executable, env)  # artifacts: their paths
        identity = AttemptId(self.run_id, p.index, p.path, attempt)
        request = ExecRequest(executable, changes, policy.cwd, identity, policy.timeout, p.node.resources)
        announced: list[StartNotice] = []

        def on_start(notice: StartNotice) -> None:
            announced.append(notice)
            self._fanout.emit(
                NodeStarted(self.run_id, p.index, p.path, attempt, started,
                            output.files["stdout"].path, output.files["stderr"].path, notice.pid, notice.host,
                            self._digests.get(p.index))
            )  # fmt: skip

        self._running += 1
        kept = Kept(())
        try:
            await output.create(in_thread=self._running > 1)
            result = await run_attempt(self._executor, request, sinks=sinks, on_start=on_start,
                                       on_stopping=lambda reason: self._fanout.emit(
                                           NodeStopping(self.run_id, p.index, p.path, attempt, reason, _now())))  # fmt: skip
            if result.error is not None:
                if not announced:  # it could not start: its attempt is recorded all the same
                    on_start(StartNotice(host="", pid=None))
                await sinks["stderr"].write(f"wtflow: {result.error}\n".encode())
            elif p.node.artifacts or isinstance(p.node.executable, PyFunc):
                kept = await self._keep(p, output.folder, policy.cwd, succeeded=result.code == 0)
                if kept.problem is not None:
                    await sinks["stderr"].write(f"wtflow: {kept.problem}\n".encode())
                output.kept = kept.files
        except asyncio.CancelledError:
            stopped = self._stop_status(p.index)
            state.update(p.index, status=stopped, attempts=attempt, ended_at=_now())
            self._fanout.emit(NodeFinished(self.run_id, p.index, p.path, attempt, stopped, None,
                                           started, _now(), False, *output.sizes()))  # fmt: skip
            raise
        finally:
            self._running -= 1
            self.problems.extend(await output.close(p.path_str))
        return plan.attempt_status(result, kept.problem), result, started, output.sizes()

    async def _keep(self, p: Placed, folder: Path, cwd: Path | None, *, succeeded: bool) -> Kept:
        # Copying declared files may take long: off the loop. A result alone is one stat, on it.
        if p.node.artifacts:
            kept = await asyncio.to_thread(keep, p.node, folder, cwd, succeeded=succeeded)
        else:
            kept = keep(p.node, folder, cwd, succeeded=succeeded)
        bind(p.node, kept)
        return kept


__all__ = ["Engine", "WtflowError"]
