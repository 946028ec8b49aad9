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
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from wtflow import plan
from wtflow.artifacts import (
    ArtifactStore,
    OutputOrder,
    StreamFile,
    create_files,
    create_files_in_thread,
    ensure_private_dir,
)
from wtflow.config import Config
from wtflow.errors import UsageError, WtflowError
from wtflow.events import Event, NodeFinished, NodeStarted, OutputReceived, RunFinished, RunStarted, node_spec
from wtflow.executors import AttemptId, ExecRequest, ExecResult, Executor, StartNotice, default_executor
from wtflow.listeners import Listener, default_listeners
from wtflow.model import Placed, Workflow
from wtflow.runstate import RunState
from wtflow.status import Status

EXIT_OK, EXIT_FAILED = plan.EXIT_OK, plan.EXIT_FAILED


def _now() -> datetime:
    return datetime.now(UTC)


class _Sink:
    """One stream of one attempt: to disk first, then to the listeners that watch output."""

    def __init__(self, engine: Engine, p: Placed, stream: str, file: StreamFile, order: OutputOrder) -> None:
        self._engine, self._placed, self._stream, self._order, self.file = engine, p, stream, order, file

    async def write(self, data: bytes) -> None:
        await self.file.write(data)
        self._order.add(self._stream, len(data))
        if self._engine._output_listeners:
            p = self._placed
            event = OutputReceived(self._engine.run_id, p.index, p.path, self._stream, data)
            self._engine._emit(event, self._engine._output_listeners)


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
    ) -> None:
        self.workflow = workflow
        self.config = config if config is not None else Config.from_env()
        self.dry_run = dry_run
        self.run_id = ""
        self.run_dir: Path | None = None
        self.problems: list[str] = []
        self.counts: dict[str, int] = {}
        self._extra_listeners = list(listeners or [])
        self._console = console
        self._listeners: list[Listener] = []
        self._output_listeners: list[Listener] = []
        self._unclosed: list[Listener] = []
        self._executor = executor if executor is not None else default_executor(self.config)
        self._only = only
        self._signal: int | None = None

    # -- the two entry points ------------------------------------------------------------

    def run(self) -> int:
        """Run to the end and return the exit code; for scripts (`raise SystemExit(engine.run())`)."""
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
        except KeyboardInterrupt:
            return 128 + signal.SIGINT
        except asyncio.CancelledError:
            if self._signal is None:
                raise
            return 128 + self._signal
        finally:
            self._executor.abandon()  # a second Ctrl-C ended the loop at once: nothing may outlive us
            self._close_listeners()
            for problem in self.problems:  # e.g. the database went away: the output is still on disk
                sys.stderr.write(f"wtflow: warning: {problem}\n")

    async def _main(self) -> int:
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        self._signal = None
        assert task is not None
        installed, previous = False, signal.getsignal(signal.SIGINT)
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not the main thread
            loop.add_signal_handler(signal.SIGTERM, self._on_signal, signal.SIGTERM, task)
            installed = True
            if callable(previous):  # asyncio.Runner's own: it cancels us, we note why first

                def on_sigint(signum: int, frame: FrameType | None) -> None:
                    self._signal = self._signal or signum
                    previous(signum, frame)

                signal.signal(signal.SIGINT, on_sigint)
        try:
            return await self.run_async()
        finally:
            if installed:
                loop.remove_signal_handler(signal.SIGTERM)
                signal.signal(signal.SIGINT, previous)

    def _on_signal(self, signum: int, task: asyncio.Task[int]) -> None:
        self._signal = signum
        task.cancel()

    async def run_async(self) -> int:
        """Run to the end inside the caller's event loop; cancellation stops every process."""
        selected = plan.selection(self.workflow, self._only)
        if self.dry_run:
            sys.stdout.write(self.workflow.render(selected))
            sys.stdout.flush()
            return EXIT_OK
        state = await self._start()
        outcome = Status.CANCELLED
        try:
            outcome = await self._visit(self.workflow.placed[0], state, selected)
        finally:
            if outcome is Status.CANCELLED:
                for index in state.unfinished():
                    self._node_finished(state, index, Status.CANCELLED)
            await self._finish(state, outcome)
        return plan.verdict(outcome)[1]

    # -- start and finish ----------------------------------------------------------------

    async def _start(self) -> RunState:
        storage = self.config.storage
        state_dir, artifacts_dir = storage.resolved_state_dir(), storage.resolved_artifacts_dir()
        db_url = self.config.db.resolved_url(state_dir)
        uses_state_dir = db_url is not None and db_url.startswith("sqlite:///" + str(state_dir))
        if uses_state_dir or artifacts_dir.is_relative_to(state_dir):
            try:
                await asyncio.to_thread(ensure_private_dir, state_dir)
            except OSError as e:
                raise UsageError(
                    f"state folder {str(state_dir)!r} cannot be created: {e.strerror}; "
                    "set WTFLOW_STATE_DIR to a writable folder"
                ) from None
        opening = getattr(self._executor, "open", None)  # a cluster is reached before anything starts
        if opening is not None:
            await opening()
        self.run_id, self.problems = uuid.uuid4().hex, []
        self._listeners = [*default_listeners(self.config, console=self._console), *self._extra_listeners]
        self._unclosed = list(self._listeners)
        self._output_listeners = [x for x in self._listeners if x.wants_output]
        self._store = ArtifactStore(artifacts_dir)
        self._slots = asyncio.Semaphore(plan.parallel_limit(self.config, self._executor.capacity))
        self._running = 0
        state = RunState(self.workflow, self.run_id)
        started_at = _now()
        self.run_dir = await self._store.create_run_dir(self.workflow.name, self.run_id, started_at)
        specs = tuple(node_spec(p) for p in self.workflow.placed)
        self._emit(
            RunStarted(
                self.run_id, self.workflow.name, started_at, self.run_dir, specs, self.config.describe()
            )
        )
        return state

    async def _finish(self, state: RunState, outcome: Status) -> None:
        self.counts = state.counts()
        status, code = plan.verdict(outcome, self._signal)
        self._emit(RunFinished(self.run_id, status, code, _now(), dict(self.counts)))
        await self._executor.aclose()
        while self._unclosed:
            await asyncio.to_thread(self._close, self._unclosed.pop(0))

    def _close_listeners(self) -> None:
        while self._unclosed:
            self._close(self._unclosed.pop(0))

    def _close(self, listener: Listener) -> None:
        try:
            self.problems.extend(listener.close())
        except Exception as e:
            self.problems.append(f"{type(listener).__name__}: {e}")

    def _emit(self, event: Event, listeners: list[Listener] | None = None) -> None:
        for listener in list(self._listeners if listeners is None else listeners):
            try:
                listener.handle(event)
            except Exception as e:
                # A listener that breaks (a closed pipe, a bug) must not stop the run.
                for group in (self._listeners, self._output_listeners):
                    if listener in group:
                        group.remove(listener)
                self.problems.append(f"{type(listener).__name__} stopped: {e}")

    def _node_finished(self, state: RunState, index: int, status: Status) -> None:
        """A node that ends without (another) attempt: skipped, cancelled, or a grouping node."""
        state.update(index, status=status)
        p = self.workflow.placed[index]
        self._emit(NodeFinished(self.run_id, index, p.path, 0, status, None, None, _now()))

    # -- the walk ------------------------------------------------------------------------

    async def _visit(self, p: Placed, state: RunState, selected: frozenset[int] | None) -> Status:
        """Run a node and its subtree; returns the outcome that counts for its parent."""
        node, keep_going = p.node, self.config.run.ignore_failure
        if selected is not None and p.index not in selected:
            self._skip(state, p)
            return Status.SUCCEEDED
        own = Status.SUCCEEDED
        children = self.workflow.children_of[p.index]
        if node.executable is not None:
            own = await self._execute(p, state)
            if own.is_failure and not keep_going:
                for child in children:
                    self._skip(state, child)
                return Status.SUCCEEDED if node.allow_failure else own
        if not children:
            return Status.SUCCEEDED if node.allow_failure else own
        if node.parallel:
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(self._visit(c, state, selected)) for c in children]
            outcome = next((t.result() for t in tasks if t.result().is_failure), Status.SUCCEEDED)
        else:
            outcome = Status.SUCCEEDED
            for i, child in enumerate(children):
                result = await self._visit(child, state, selected)
                if result.is_failure:
                    outcome = result
                    if not keep_going:
                        for later in children[i + 1 :]:
                            self._skip(state, later)
                        break
        if node.executable is None:
            group = Status.FAILED if outcome.is_failure else Status.SUCCEEDED
            self._node_finished(state, p.index, Status.CANCELLED if outcome is Status.CANCELLED else group)
        if own.is_failure and not outcome.is_failure:
            outcome = own
        return Status.SUCCEEDED if node.allow_failure else outcome

    def _skip(self, state: RunState, p: Placed) -> None:
        for index in plan.subtree(self.workflow, p.index):
            if state[index].status is Status.PENDING:
                self._node_finished(state, index, Status.SKIPPED)

    # -- one node's executable, with retries -----------------------------------------------

    async def _execute(self, p: Placed, state: RunState) -> Status:
        policy = plan.policy_for(p, self.config)
        attempt = 0
        while True:
            attempt += 1
            async with self._slots:
                status, result, started, sizes = await self._attempt(p, state, policy, attempt)
            code = None if result is None else result.code
            retry = plan.should_retry(policy, status, code, attempt)
            state.update(p.index, status=status, exit_code=code, attempts=attempt, ended_at=_now())
            self._emit(
                NodeFinished(
                    self.run_id, p.index, p.path, attempt, status, code,
                    started, _now(), retry, *sizes,
                )
            )  # fmt: skip
            if not retry:
                return status
            state.update(p.index, status=Status.RUNNING)  # Ctrl-C while it waits: cancelled, not failed
            await asyncio.sleep(plan.retry_delay(policy, attempt, random.uniform))

    async def _attempt(
        self, p: Placed, state: RunState, policy: plan.Policy, attempt: int
    ) -> tuple[Status, ExecResult | None, datetime, tuple[int, int, tuple[tuple[str, int], ...] | None]]:
        assert self.run_dir is not None
        assert p.node.executable is not None
        files = self._store.attempt_files(self.run_dir, p.path, attempt)
        for name, f in files.items():
            p.node.artifact(name).bind(f.path)
        order = OutputOrder()
        sinks = {name: _Sink(self, p, name, f, order) for name, f in files.items()}
        started = _now()
        state.update(p.index, status=Status.RUNNING, started_at=state[p.index].started_at or started)
        identity = AttemptId(self.run_id, p.index, p.path, attempt)
        env = {
            **(policy.env or {}),
            "WTFLOW_RUN_ID": self.run_id,
            "WTFLOW_NODE": p.path_str,
            "WTFLOW_ATTEMPT": str(attempt),
            "WTFLOW_ARTIFACTS": str(files["stdout"].path.parent),
        }
        request = ExecRequest(p.node.executable, env, policy.cwd, identity, resources=p.node.resources)
        announced: list[StartNotice] = []

        def on_start(notice: StartNotice) -> None:
            announced.append(notice)
            self._emit(
                NodeStarted(self.run_id, p.index, p.path, attempt, started,
                            files["stdout"].path, files["stderr"].path, notice.pid, notice.host)
            )  # fmt: skip

        result: ExecResult | None = None
        self._running += 1
        try:
            # Nodes starting together make their folders at once, on worker threads; a node alone
            # makes them on the loop, where a thread hand-off would only add to its latency.
            if self._running > 1:
                await create_files_in_thread(files.values())
            else:
                create_files(files.values())
            async with asyncio.timeout(policy.timeout) as scope:
                result = await self._executor.run(request, sinks=sinks, on_start=on_start)
                if result.error is not None:
                    if not announced:  # it could not start: its attempt is recorded all the same
                        on_start(StartNotice(host="", pid=None))
                    await sinks["stderr"].write(f"wtflow: {result.error}\n".encode())
            status = Status.SUCCEEDED if result.code == 0 else Status.FAILED
        except TimeoutError:
            if not scope.expired():
                raise
            status = Status.TIMED_OUT
        except asyncio.CancelledError:
            state.update(p.index, status=Status.CANCELLED, attempts=attempt, ended_at=_now())
            self._emit(
                NodeFinished(
                    self.run_id, p.index, p.path, attempt, Status.CANCELLED, None, started, _now(), False,
                    files["stdout"].size, files["stderr"].size, order.frozen(),
                )
            )  # fmt: skip
            raise
        finally:
            self._running -= 1
            for f in files.values():
                await f.close()
                if f.error is not None and f.size:
                    self.problems.append(
                        f"output of {p.path_str} not fully kept in {f.path}: {f.error.strerror}"
                    )
                elif f.error is not None:
                    self.problems.append(f"cannot write {f.path}: {f.error.strerror}")
        return status, result, started, (files["stdout"].size, files["stderr"].size, order.frozen())


__all__ = ["Engine", "WtflowError"]
