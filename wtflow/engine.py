"""The engine: walks the tree under asyncio, applies the failure policy, emits events."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import random
import signal
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wtflow.artifacts import ArtifactStore, StreamFile, create_files, ensure_private_dir
from wtflow.config import Config
from wtflow.errors import UsageError, WtflowError
from wtflow.events import (
    Event,
    Listener,
    NodeFinished,
    NodeSpec,
    NodeStarted,
    OutputReceived,
    RunFinished,
    RunStarted,
)
from wtflow.executables import Command
from wtflow.executors import ExecRequest, Executor
from wtflow.executors.local import TOKEN_VAR, LocalExecutor, kill_token
from wtflow.model import Placed, Workflow
from wtflow.status import Status

EXIT_OK, EXIT_FAILED = 0, 1


def _now() -> datetime:
    return datetime.now(UTC)


# An attempt's status, exit code, start, and (stdout size, stderr size, output order).
_Outcome = tuple[Status, int | None, datetime, tuple[int, int, tuple[tuple[str, int], ...] | None]]


class _OutputOrder:
    """How an attempt's two streams alternated, in bytes, so a reader can interleave the files."""

    LIMIT = 10_000  # alternations kept; past it a reader shows one stream after the other

    def __init__(self) -> None:
        self.segments: list[list[Any]] | None = []

    def add(self, stream: str, size: int) -> None:
        segments = self.segments
        if segments is None:
            return
        if segments and segments[-1][0] == stream:
            segments[-1][1] += size
        elif len(segments) < self.LIMIT:
            segments.append([stream, size])
        else:
            self.segments = None

    def frozen(self) -> tuple[tuple[str, int], ...] | None:
        return None if self.segments is None else tuple((stream, size) for stream, size in self.segments)


class _Sink:
    """One stream of one attempt: to disk first, then to the listeners that watch output."""

    def __init__(
        self, engine: Engine, placed: Placed, stream: str, file: StreamFile, order: _OutputOrder
    ) -> None:
        self._engine = engine
        self._placed = placed
        self._stream = stream
        self._order = order
        self.file = file

    async def write(self, data: bytes) -> None:
        await self.file.write(data)
        self._order.add(self._stream, len(data))
        if self._engine._output_listeners:
            p = self._placed
            event = OutputReceived(self._engine.run_id, p.index, p.path, self._stream, data)
            self._engine._emit(event, self._engine._output_listeners)


class Engine:
    """Runs a workflow: `Engine(wf).run()` returns the exit code (0 ok, 1 a node failed).

    Interrupted by Ctrl-C or SIGTERM, `run()` stops every process group, completes the record
    and returns 130 or 143."""

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
        self.run_id = uuid.uuid4().hex
        self.run_dir: Path | None = None
        self.problems: list[str] = []
        self.counts: Counter[str] = Counter()
        self._extra_listeners = list(listeners or [])
        self._console = console
        self._listeners: list[Listener] = []
        self._output_listeners: list[Listener] = []
        self._executor = executor or LocalExecutor(kill_grace=self.config.run.kill_grace)
        self._only = only
        self._slots: asyncio.Semaphore | None = None
        self._signal: int | None = None
        self._live_groups: set[int] = set()
        self._store: ArtifactStore | None = None

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
            self._kill_leftovers()
            for problem in self.problems:  # e.g. the database went away: the output is still on disk
                sys.stderr.write(f"wtflow: warning: {problem}\n")

    async def _main(self) -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        installed = False
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not the main thread
            loop.add_signal_handler(signal.SIGTERM, self._on_signal, signal.SIGTERM, task)
            installed = True
        try:
            return await self.run_async()
        finally:
            if installed:
                loop.remove_signal_handler(signal.SIGTERM)

    def _on_signal(self, signum: int, task: asyncio.Task[int]) -> None:
        self._signal = signum
        task.cancel()

    async def run_async(self) -> int:
        """Run to the end inside the caller's event loop; cancellation stops every process."""
        if self.dry_run:
            from wtflow.console import write_bytes

            write_bytes(sys.stdout, self.workflow.render(self._selection()).encode())
            return EXIT_OK
        await self._start()
        outcome = Status.CANCELLED
        try:
            outcome = await self._visit(self.workflow.placed[0], selected=self._selection())
        finally:
            if outcome is Status.CANCELLED:
                self._mark_unfinished_cancelled()
            await self._finish(outcome)
        return EXIT_FAILED if outcome.is_failure else EXIT_OK

    # -- start and finish ----------------------------------------------------------------

    async def _start(self) -> None:
        run_cfg, storage = self.config.run, self.config.storage
        state_dir = storage.resolved_state_dir()
        artifacts_dir = storage.resolved_artifacts_dir()
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
        self._listeners = [*self._default_listeners(db_url), *self._extra_listeners]
        self._output_listeners = [x for x in self._listeners if getattr(x, "wants_output", True)]
        self._store = ArtifactStore(artifacts_dir)
        self._slots = asyncio.Semaphore(run_cfg.max_parallel)
        self._started_at = _now()
        # Read once: copying os.environ decodes every variable, ~150 us a node on a 500-node fan-out.
        self._base_env = dict(os.environ)
        for node in self.workflow.nodes:
            node.status, node.retcode, node.attempts = Status.PENDING, None, 0
        self.workflow.run_id = self.run_id  # type: ignore[attr-defined]
        self.run_dir = await self._store.create_run_dir(self.workflow.name, self.run_id, self._started_at)
        self._emit(
            RunStarted(
                self.run_id,
                self.workflow.name,
                self._started_at,
                self.run_dir,
                tuple(_spec(p) for p in self.workflow.placed),
                self.config.describe(),
            )
        )

    def _default_listeners(self, db_url: str | None) -> list[Listener]:
        listeners: list[Listener] = []
        if db_url is not None:
            from wtflow.db.recorder import Recorder  # only runs that record pay for SQLAlchemy

            listeners.append(Recorder.connect(db_url))
        if self._console is not None:
            listeners.append(self._console)
        else:
            from wtflow.console import PlainConsole, RawConsole

            mode = self.config.run.console
            if mode == "raw":
                listeners.append(RawConsole())
            elif mode in ("plain", "live"):
                listeners.append(PlainConsole())
        if self.config.run.report is not None:  # only runs that want a report pay for its import
            from wtflow.reports.html import HtmlReport

            listeners.append(HtmlReport(self.config.run.report))
        return listeners

    async def _finish(self, outcome: Status) -> None:
        self.counts = Counter(n.status.value for n in self.workflow.nodes)
        code = EXIT_FAILED if outcome.is_failure else EXIT_OK
        status = outcome if outcome in (Status.CANCELLED, Status.FAILED) else Status.SUCCEEDED
        if outcome is Status.TIMED_OUT:
            status = Status.FAILED
        self._emit(RunFinished(self.run_id, status, code, _now(), dict(self.counts)))
        await asyncio.to_thread(kill_token, self.run_id)  # anything of this run that escaped its group
        for listener in self._listeners:
            try:
                await asyncio.to_thread(listener.close)
            except Exception as e:
                self.problems.append(f"{type(listener).__name__}: {e}")
            error = getattr(listener, "error", None)
            if error is not None:
                self.problems.append(str(error))

    def _kill_leftovers(self) -> None:
        # Reached after a second Ctrl-C ended the loop at once: nothing may outlive us.
        for pgid in list(self._live_groups):
            with contextlib.suppress(OSError):
                os.killpg(pgid, signal.SIGKILL)
        self._live_groups.clear()

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

    # -- the walk ------------------------------------------------------------------------

    def _selection(self) -> set[int] | None:
        if self._only is None:
            return None
        placed = self.workflow.placed
        chosen: set[int] = set()
        # A chosen node brings its whole subtree, and the ancestors on the way to it (whose own
        # executables run first, as `make` builds prerequisites).
        for p in placed:
            if self._only(p) or (p.parent is not None and p.parent in chosen):
                chosen.add(p.index)
        selected: set[int] = set()
        for index in chosen:
            i: int | None = index
            while i is not None and i not in selected:
                selected.add(i)
                i = placed[i].parent
        return selected

    def _children(self, p: Placed) -> list[Placed]:
        return self.workflow.children_of[p.index]

    async def _visit(self, p: Placed, *, selected: set[int] | None) -> Status:
        """Run a node and its subtree; returns the outcome that counts for its parent."""
        node = p.node
        if selected is not None and p.index not in selected:
            self._skip_subtree(p, Status.SKIPPED)
            return Status.SUCCEEDED
        own = Status.SUCCEEDED
        if node.executable is not None:
            own = await self._execute(p)
            if own.is_failure and not self.config.run.ignore_failure:
                for child in self._children(p):
                    self._skip_subtree(child, Status.SKIPPED)
                return Status.SUCCEEDED if node.allow_failure else own
        children = self._children(p)
        if not children:
            return Status.SUCCEEDED if node.allow_failure else own
        outcome = await (
            self._parallel(children, selected) if node.parallel else self._sequence(children, selected)
        )
        if node.executable is None:
            node.status = Status.FAILED if outcome.is_failure else Status.SUCCEEDED
            if outcome is Status.CANCELLED:
                node.status = Status.CANCELLED
            self._emit(NodeFinished(self.run_id, p.index, p.path, 0, node.status, None, None, _now()))
        if own.is_failure and not outcome.is_failure:
            outcome = own
        return Status.SUCCEEDED if node.allow_failure else outcome

    async def _sequence(self, children: list[Placed], selected: set[int] | None) -> Status:
        outcome = Status.SUCCEEDED
        for i, child in enumerate(children):
            result = await self._visit(child, selected=selected)
            if result.is_failure:
                outcome = result
                if not self.config.run.ignore_failure:
                    for later in children[i + 1 :]:
                        self._skip_subtree(later, Status.SKIPPED)
                    break
        return outcome

    async def _parallel(self, children: list[Placed], selected: set[int] | None) -> Status:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(self._visit(c, selected=selected)) for c in children]
        failures = [t.result() for t in tasks if t.result().is_failure]
        return failures[0] if failures else Status.SUCCEEDED

    def _skip_subtree(self, p: Placed, status: Status) -> None:
        for q in self._subtree(p):
            if q.node.status is Status.PENDING:
                q.node.status = status
                self._emit(NodeFinished(self.run_id, q.index, q.path, 0, status, None, None, _now()))

    def _subtree(self, p: Placed) -> Iterable[Placed]:
        placed = self.workflow.placed
        yield p
        depth = len(p.path)
        for q in placed[p.index + 1 :]:
            if len(q.path) <= depth:
                break
            yield q

    def _mark_unfinished_cancelled(self) -> None:
        for p in self.workflow.placed:
            if p.node.status in (Status.PENDING, Status.RUNNING):
                p.node.status = Status.CANCELLED
                self._emit(
                    NodeFinished(self.run_id, p.index, p.path, 0, Status.CANCELLED, None, None, _now())
                )

    # -- one node's executable, with retries -----------------------------------------------

    async def _execute(self, p: Placed) -> Status:
        node = p.node
        attempt = 0
        while True:
            attempt += 1
            status, code, started, sizes = await self._attempt(p, attempt)
            retry = (
                status in (Status.FAILED, Status.TIMED_OUT)
                and attempt <= node.retries
                and (node.retry_on is None or code in node.retry_on)
            )
            node.status, node.retcode, node.attempts = status, code, attempt
            self._emit(
                NodeFinished(
                    self.run_id, p.index, p.path, attempt, status, code,
                    started, _now(), retry, *sizes,
                )
            )  # fmt: skip
            if not retry:
                return status
            delay = node.retry_delay * node.retry_backoff ** (attempt - 1)
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # jitter: retries of many nodes spread out

    async def _attempt(self, p: Placed, attempt: int) -> _Outcome:
        assert self._slots is not None
        async with self._slots:
            return await self._run_attempt(p, attempt)

    async def _run_attempt(self, p: Placed, attempt: int) -> _Outcome:
        assert self._store is not None
        assert self.run_dir is not None
        node = p.node
        executable = node.executable
        assert executable is not None
        files = self._store.attempt_files(self.run_dir, p.path, attempt)
        for name, f in files.items():
            node.artifact(name).bind(f.path)
        order = _OutputOrder()
        sinks = {name: _Sink(self, p, name, f, order) for name, f in files.items()}
        node.status = Status.RUNNING
        started = _now()
        token = f"{self.run_id}:{p.index}:{attempt}"
        request = ExecRequest(
            executable,
            self._env(p, token),
            _cwd(node.cwd),
            token,
            functools.partial(create_files, files.values()),
        )
        limit = node.effective_timeout or self.config.run.timeout
        pid: list[int] = []

        def on_start(process_id: int) -> None:
            pid.append(process_id)
            self._live_groups.add(process_id)
            self._emit(
                NodeStarted(self.run_id, p.index, p.path, attempt, started,
                            files["stdout"].path, files["stderr"].path, process_id)
            )  # fmt: skip

        code: int | None = None
        try:
            async with asyncio.timeout(limit) as scope:
                code = await self._executor.run(request, sinks=sinks, on_start=on_start)
            status = Status.SUCCEEDED if code == 0 else Status.FAILED
        except TimeoutError:
            if not scope.expired():
                raise
            status = Status.TIMED_OUT
        except asyncio.CancelledError:
            node.status, node.attempts = Status.CANCELLED, attempt
            sizes = (files["stdout"].size, files["stderr"].size)
            self._emit(
                NodeFinished(
                    self.run_id, p.index, p.path, attempt, Status.CANCELLED, None, started, _now(), False,
                    *sizes, order.frozen(),
                )
            )  # fmt: skip
            raise
        finally:
            self._live_groups.difference_update(pid)
            for f in files.values():
                await f.close()
                if f.error is not None and f.size:
                    self.problems.append(
                        f"output of {p.path_str} not fully kept in {f.path}: {f.error.strerror}"
                    )
                elif f.error is not None:
                    self.problems.append(f"cannot write {f.path}: {f.error.strerror}")
        return status, code, started, (files["stdout"].size, files["stderr"].size, order.frozen())

    def _env(self, p: Placed, token: str) -> dict[str, str]:
        env = self._base_env.copy()
        if p.node.env:
            env.update(p.node.env)
        inherited = env.get(TOKEN_VAR)
        tokens = f"{self.run_id},{token}"
        env[TOKEN_VAR] = f"{inherited},{tokens}" if inherited else tokens
        env["WTFLOW_RUN_ID"] = self.run_id
        env["WTFLOW_NODE"] = p.path_str
        return env


def _cwd(cwd: str | Path | None) -> Path | None:
    return None if cwd is None else Path(cwd)


def _spec(p: Placed) -> NodeSpec:
    executable = p.node.executable
    kind = None if executable is None else ("command" if isinstance(executable, Command) else "pyfunc")
    return NodeSpec(
        p.index,
        p.path,
        p.parent,
        p.position,
        kind,
        None if executable is None else executable.describe(),
        p.node.parallel,
        p.node.allow_failure,
    )


__all__ = ["Engine", "WtflowError"]
