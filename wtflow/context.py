"""What one run holds while it goes on, apart from the engine's walk: its id and folder, the
listeners, the node records, the policies and the plan's decisions.

    select(...)          the nodes a run selects and what each waits for (cycles refused)
    make_plan(...)       each node's digest, and with --resume what it does and why
    dry_run(...)         what --dry-run prints
    start_run(...)       opens the executor and listeners, makes the plan, folder and records
    RunContext           a run's wiring: slots, a node's `when=` (`condition()`), an attempt's
                         files and request; `finished()` ends a node that gets no (further) attempt
    AttemptEvents        one attempt's events, from the executor's callbacks
    finish_run(...)      emits RunFinished, closes the executor and every listener
    close_out(...)       the last of a run in a loop of its own: abandon, close, say what went wrong

The engine walks the tree; everything here is done once a run or once a node, whatever the walk.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wtflow import plan
from wtflow.artifacts import ArtifactStore, AttemptOutput, prepare_state_dir
from wtflow.conditions import RunView, evaluate
from wtflow.config import Config
from wtflow.decisions import REUSE, Decision, PreviousRun, decide, render
from wtflow.dependencies import Waits, waits
from wtflow.digests import workflow_digests
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
from wtflow.executors import AttemptId, ExecRequest, Executor, StartNotice, open_executor
from wtflow.gates import Gates, problem_of_skip
from wtflow.kept import forget
from wtflow.listeners import Fanout, Listener, default_listeners
from wtflow.model import Placed, Workflow
from wtflow.params import plain_params
from wtflow.plan import Policy
from wtflow.runstate import RunState
from wtflow.slots import Slots
from wtflow.status import Status

OutputSizes = tuple[int, int, tuple[tuple[str, int], ...] | None, tuple[KeptFile, ...]]


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Plan:
    """Each node's digest, and with a run to resume, what each node does and why."""

    digests: dict[int, str]
    decisions: dict[int, Decision]
    previous: PreviousRun | None


def make_plan(
    workflow: Workflow,
    config: Config,
    selected: frozenset[int] | None,
    resume: str | PreviousRun | None,
    waits: Waits | None = None,
    policies: Sequence[Policy] | None = None,
) -> Plan:
    digests = workflow_digests(workflow, waits, policies)
    previous = resume
    if isinstance(previous, str):
        from wtflow.previous import previous_run  # the record's read side, only when resuming

        previous = previous_run(config, workflow.name, previous)
    return Plan(
        {i: str(d) for i, d in digests.items()},
        decide(workflow, digests, selected, previous, waits),
        previous,
    )


def select(
    workflow: Workflow, only: Callable[[Placed], bool] | None, tags: frozenset[str], skip_tags: frozenset[str]
) -> tuple[frozenset[int] | None, dict[int, tuple[int, ...]]]:
    """The nodes a run selects, and what each waits for; a cycle, or a wait on a node left out,
    is refused now, before anything runs."""
    workflow.trim()  # nodes an earlier run grew are not this run's
    selected = plan.selection(workflow, only, tags=tags, skip_tags=skip_tags)
    return selected, waits(workflow, selected)


def dry_run(
    workflow: Workflow,
    config: Config,
    selected: frozenset[int] | None,
    resume: str | PreviousRun | None,
    waits: Waits | None = None,
) -> str:
    return render(workflow, make_plan(workflow, config, selected, resume, waits).decisions, waits or {})


@dataclass(eq=False)
class RunContext:
    workflow: Workflow
    config: Config
    run_id: str
    run_dir: Path
    store: ArtifactStore
    fanout: Fanout
    state: RunState
    plan: Plan
    policies: tuple[Policy, ...]
    slots: Slots  # the run's cap on processes at once
    group_slots: dict[int, Slots]  # those of groups with max_parallel
    keep_going: bool  # a failure does not stop what comes after it (run.ignore_failure)
    selected: frozenset[int] | None  # None: every node (no --only)
    view: RunView  # what `when=` conditions see
    waits: dict[int, tuple[int, ...]]  # what each node waits for across branches (dependencies.py)
    gates: Gates = field(default_factory=Gates)  # each node's, settled when its subtree ended
    next_up: dict[int, Placed] = field(default_factory=dict)  # a node: the next, made ahead once it started
    ahead: dict[int, AttemptOutput] = field(default_factory=dict)  # first attempts' files made early

    @contextlib.asynccontextmanager
    async def slots_for(self, policy: Policy, index: int) -> AsyncIterator[None]:
        """Held while an attempt runs: the slots of the groups that cap it, then the run's; among
        the nodes waiting, the higher priority gets a free slot first, then the earlier in the tree."""
        key = (-policy.priority, index)
        async with contextlib.AsyncExitStack() as slots:
            for group in policy.limits:  # outermost first, the run's own last: no cycle of waits
                await slots.enter_async_context(self.group_slots[group].taken(key))
            await slots.enter_async_context(self.slots.taken(key))
            yield

    def make_ahead(self, p: Placed, *, after: Placed) -> None:
        """Have the files of `p`'s first attempt made once `after` (the node before it in a
        sequence) has started, while its process runs: making a folder and two files is a tenth
        of what a chain's node costs from one process's end to the next's start, and several
        times that on a disk slow to find free inodes (see the README). Made for a node that
        does not run after all (the one before failed), they are removed as the run ends."""
        decision = self.plan.decisions.get(p.index)
        if (
            after.node.executable is not None  # a group starts no process of its own
            and p.node.executable is not None
            and (self.selected is None or p.index in self.selected)
            and (decision is None or decision.action != REUSE)  # its earlier files go there
        ):
            self.next_up[after.index] = p

    def make_ahead_now(self, p: Placed) -> None:
        if self.state[p.index].status is Status.PENDING and p.index not in self.ahead:
            output = self.store.attempt_output(self.run_dir, p.path, 1)
            if output.create_ahead():
                self.ahead[p.index] = output

    def discard_ahead(self) -> None:
        """Remove the files made ahead for attempts that never started."""
        for output in self.ahead.values():
            output.discard()
        self.ahead.clear()
        self.next_up.clear()

    def _attempt_output(self, p: Placed, attempt: int) -> AttemptOutput:
        made = self.ahead.pop(p.index, None) if attempt == 1 else None
        return made if made is not None else self.store.attempt_output(self.run_dir, p.path, attempt)

    def open_attempt(self, p: Placed, events: AttemptEvents) -> AttemptOutput:
        """The attempt's output files (not yet created, unless made ahead), bound to the node's
        stream artifacts; its result and declared files are its own or none (a retry hands on
        nothing earlier)."""
        output = self._attempt_output(p, events.attempt)
        for name, f in output.files.items():
            p.node.artifact(name).bind(f.path)
        forget(p.node)
        events.created(output.files["stdout"].path, output.files["stderr"].path)
        started = self.state[p.index].started_at or events.started
        self.state.update(p.index, status=Status.RUNNING, started_at=started)
        return output

    def request(self, p: Placed, policy: Policy, attempt: int, folder: Path) -> ExecRequest:
        """What the executor is asked to run: artifacts in argv or env as their paths."""
        assert p.node.executable is not None
        env = plan.attempt_env(policy, self.run_id, p, attempt, folder)
        executable, changes = plan.with_paths(p.node.executable, env)
        identity = AttemptId(self.run_id, p.index, p.path, attempt)
        return ExecRequest(executable, changes, policy.cwd, identity, policy.timeout, p.node.resources)

    async def condition(self, p: Placed) -> bool | None:
        """Whether the node's `when=` holds now; None when it raised, and the node has failed."""
        if p.node.when is True:
            return True
        decided = evaluate(p.node.when, self.view)
        if decided.error is None:
            return decided.holds
        await self.condition_failed(p, decided.error)
        return None

    async def condition_failed(self, p: Placed, error: str) -> None:
        """The node's `when=` raised: it fails, as an attempt of no process whose stderr holds
        the traceback (where `wtflow logs` and the summary look)."""
        output, events = self._attempt_output(p, 1), AttemptEvents(self, p, 1)
        for name, f in output.files.items():
            p.node.artifact(name).bind(f.path)
        events.created(output.files["stdout"].path, output.files["stderr"].path)
        try:
            output.create()
            events.start(StartNotice(host="", pid=None))
            sinks = output.sinks(events.chunk if self.fanout.wants_output else None)
            await sinks["stderr"].write(
                f"wtflow: when= of {p.path_str} raised an exception\n{error}".encode()
            )
        finally:
            self.fanout.problems.extend(await output.close(p.path_str))
        ended = events.finished(Status.FAILED, None, output.sizes())
        self.state.update(
            p.index, status=Status.FAILED, attempts=1, started_at=events.started, ended_at=ended
        )

    def finished(self, index: int, status: Status, reason: str | None = None) -> None:
        """A node that ends without (another) attempt: skipped, cancelled, or a grouping node."""
        result = self.state.update(index, status=status)  # cancelled in its retry wait: keeps its code
        p = self.workflow.placed[index]
        if status is Status.SKIPPED:  # it will not be walked: those waiting for it hear now
            self.gates.settle(index, problem_of_skip(p.path_str, reason))
        self.fanout.emit(
            NodeFinished(
                self.run_id, index, p.path, 0, status, result.exit_code, result.started_at, now(),
                reason=reason,
            )
        )  # fmt: skip


async def start_run(
    workflow: Workflow,
    config: Config,
    executor: Executor,
    fanout: Fanout,
    listeners: Sequence[Listener],
    console: Listener | None,
    selected: frozenset[int] | None,
    resume: str | PreviousRun | None,
    *,
    params: Mapping[str, Any],
    provenance: Mapping[str, Any] | None,
    waits: dict[int, tuple[int, ...]] | None = None,
) -> RunContext:
    """Open the executor and the listeners (into `fanout`, which the caller closes whatever
    happens), then make the run's plan, folder and records, and announce the run."""
    # First: a cluster is reached before anything starts, and the local executor forks its
    # PyFuncs' server before any thread (the state folder is made on one).
    await open_executor(executor, workflow)
    try:
        artifacts_dir = await prepare_state_dir(config)
        fanout.extend([*default_listeners(config, console=console, workflow=workflow), *listeners])
        # After the recorder opened the record: a killed run to resume has been settled from its journal.
        waits = waits or {}
        policies = plan.policies(workflow, config)
        made = make_plan(workflow, config, selected, resume, waits, policies)
        run_id, store, started_at = uuid.uuid4().hex, ArtifactStore(artifacts_dir), now()
        run_dir = await store.create_run_dir(workflow.name, run_id, started_at)
        state = RunState(workflow, run_id)
        ctx = RunContext(
            workflow, config, run_id, run_dir, store, fanout, state, made, policies,
            Slots(plan.slots(config, executor.capacity)),
            {p.index: Slots(p.node.max_parallel) for p in workflow.placed if p.node.max_parallel is not None},
            config.run.ignore_failure and not config.run.fail_fast, selected,
            RunView(workflow, state, frozenset(config.run.flags)), waits,
        )  # fmt: skip
        # Recorded for a resumed run only: elsewhere every node runs, for no reason worth keeping.
        decisions = {i: str(d) for i, d in made.decisions.items()} if made.previous else {}
        tags = plan.node_tags(workflow)
        specs = tuple(
            node_spec(
                p,
                decisions.get(p.index),
                policies[p.index].allow_failure,
                tags[p.index],
                depends_on=waited_paths(workflow, waits, p),
            )
            for p in workflow.placed
        )
        previous_id = None if made.previous is None else made.previous.run_id
        fanout.emit(
            RunStarted(
                run_id, workflow.name, started_at, run_dir, specs, config.describe(), previous_id,
                params=plain_params(params), provenance=None if provenance is None else dict(provenance),
            )
        )  # fmt: skip
        return ctx
    except BaseException:
        await executor.aclose()  # what it opened (a server, a cluster's client) goes with the run
        raise


def waited_paths(workflow: Workflow, waits: Waits, p: Placed) -> tuple[str, ...]:
    """The paths of the nodes `p` waits for, as its NodeSpec (and the record) say them."""
    return tuple(workflow.placed[i].path_str for i in waits.get(p.index, ()))


async def finish_run(ctx: RunContext, executor: Executor, status: Status, code: int) -> dict[str, int]:
    ctx.discard_ahead()
    counts = ctx.state.counts()
    ctx.fanout.emit(RunFinished(ctx.run_id, status, code, now(), dict(counts)))
    await executor.aclose()
    while await asyncio.to_thread(ctx.fanout.close_next):  # a recorder may take its time
        pass
    return counts


class AttemptEvents:
    """One attempt's events, sent as the executor's callbacks report them."""

    def __init__(self, ctx: RunContext, p: Placed, attempt: int) -> None:
        self.ctx, self.p, self.attempt = ctx, p, attempt
        self.started = now()
        self.announced = False  # NodeStarted was sent
        self._files: tuple[Path | None, Path | None] = (None, None)

    def created(self, stdout: Path, stderr: Path) -> None:
        self._files = (stdout, stderr)

    def chunk(self, stream: str, data: bytes) -> None:
        self.ctx.fanout.emit_output(OutputReceived(self.ctx.run_id, self.p.index, self.p.path, stream, data))

    def start(self, notice: StartNotice) -> None:
        # When it runs, not when it was asked for: a cluster may queue it for a free worker.
        self.announced, self.started = True, now()
        ctx, p = self.ctx, self.p
        if self.attempt == 1:
            ctx.state.update(p.index, started_at=self.started)
        ctx.fanout.emit(
            NodeStarted(ctx.run_id, p.index, p.path, self.attempt, self.started, *self._files, notice.pid,
                        notice.host, ctx.plan.digests.get(p.index))
        )  # fmt: skip
        following = ctx.next_up.pop(p.index, None)
        if following is not None:  # once the executor waits for this process, not before
            asyncio.get_running_loop().call_soon(ctx.make_ahead_now, following)

    def stopping(self, reason: str) -> None:
        ctx, p = self.ctx, self.p
        ctx.fanout.emit(NodeStopping(ctx.run_id, p.index, p.path, self.attempt, reason, now()))

    def finished(
        self, status: Status, code: int | None, sizes: OutputSizes, retry_at: datetime | None = None
    ) -> datetime:
        ctx, p, ended = self.ctx, self.p, now()
        ctx.fanout.emit(
            NodeFinished(ctx.run_id, p.index, p.path, self.attempt, status, code, self.started, ended,
                         retry_at is not None, *sizes, retry_at=retry_at)
        )  # fmt: skip
        return ended


def close_out(executor: Executor, fanout: Fanout, notes: Sequence[str], problems: Sequence[str]) -> None:
    """The last of a run in a loop of its own, however it ended: nothing may outlive it (a second
    Ctrl-C ended the loop at once), every listener is closed, and what went wrong is said."""
    executor.abandon()
    fanout.close_all()
    for note in notes:
        sys.stderr.write(f"wtflow: {note}\n")
    for problem in problems:  # e.g. the database went away: the output is still on disk
        sys.stderr.write(f"wtflow: warning: {problem}\n")
