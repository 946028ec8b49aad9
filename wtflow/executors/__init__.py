"""How an executable becomes a process: the seam between the engine and where things run.

    Executor (protocol)
    ├── LocalExecutor        asyncio + a process group per node on this machine (local.py)
    └── DaskExecutor         one dask.distributed task per attempt; on the worker, a LocalExecutor
                             (dask.py; imported only when a run names a scheduler)

The engine sends an `ExecRequest`: what to run, the environment *changes* (the executor merges
them onto its own environment), the working directory and the attempt's identity. `run()` calls
`on_start` with a `StartNotice` once the process runs, feeds each stdout/stderr chunk to its sink
as it arrives, and returns an `ExecResult`: the exit code, the signal that ended it, or why it
could not start or that its worker was lost. Past the request's time limit the executor stops
the attempt and says so in the result (`timed_out`, and the signal that ended it). Cancelling
`run()` stops the whole process tree (SIGTERM, grace, SIGKILL) before the CancelledError goes on;
an executor that knows how the process then ended says so on it (`note_stopped`), so that a
node stopped by its group's time limit is recorded with the signal that ended it, as one
stopped by its own.

An executor's `open()` may also take `workflow`, the tree the run may run, to prepare for it
(the local executor forks its PyFuncs' server then, before the run starts any thread);
`open_executor()` passes it only to an executor whose `open()` has that parameter. An executor
may also take `on_stopping`: called with "timed out" or "cancelled" when it starts
stopping an attempt's processes, before the kill grace, so that the run can show the node as
stopping meanwhile. It is optional: the engine calls `run_attempt()`, which passes it only to an
executor whose `run()` has that parameter.

An executor owns its processes: the engine never signals a pid. `abandon()` is the last resort
after a second Ctrl-C (synchronous: the event loop is gone); `aclose()` ends a run cleanly. An
executor may also have `hurry()`: a second interrupt while the first's clean-up runs (`always`
nodes, kill graces), the loop still turning; it kills what runs at once, and the stops under way
then find it ended. Without it, that clean-up takes its graces.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from wtflow.executables import Executable

if TYPE_CHECKING:
    from wtflow.config import Config
    from wtflow.model import Workflow

COULD_NOT_START = 127  # what a shell returns for a missing program
OnStopping = Callable[[str], None]  # the reason: "timed out" | "cancelled"


class Sink(Protocol):
    """Where a stream's chunks go.

    A sink that never needs to wait may also offer `write_now(data)`, the same write as a plain
    call: the local executor then writes each chunk from the loop's readiness callback."""

    async def write(self, data: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class AttemptId:
    """Which attempt of which node of which run a request is."""

    run_id: str
    index: int  # the node's preorder index
    path: tuple[str, ...]
    number: int  # 1 for the first attempt

    @property
    def token(self) -> str:
        return f"{self.run_id}:{self.index}:{self.number}"


@dataclass(frozen=True, slots=True)
class ExecRequest:
    """What to run and where: the environment changes (not a whole environment) and the cwd."""

    executable: Executable
    env: Mapping[str, str]
    cwd: Path | None
    attempt: AttemptId
    # Seconds the attempt may run; past it the executor stops it as a cancellation would and
    # returns a result with timed_out set (so the record says which signal ended it).
    timeout: float | None = None
    # What the worker must offer (Node.resources); only a cluster executor reads it.
    resources: Mapping[str, float] | None = None


@dataclass(frozen=True, slots=True)
class StartNotice:
    """Where an attempt runs, once it runs."""

    host: str
    pid: int | None


@dataclass(frozen=True, slots=True)
class ExecResult:
    """How an attempt ended: exactly one of the exit code, the signal or the error is set."""

    exit_code: int | None = None
    signal: int | None = None
    error: str | None = None  # why it could not start, or that its worker was lost
    lost: bool = False  # the error is a lost worker (it may have run), not a failure to start
    timed_out: bool = False  # stopped by the request's time limit (then `signal` says how)

    @classmethod
    def from_returncode(cls, code: int, *, timed_out: bool = False) -> ExecResult:
        """From a subprocess-style code: negative means killed by that signal."""
        if code < 0:
            return cls(signal=-code, timed_out=timed_out)
        return cls(exit_code=code, timed_out=timed_out)

    @property
    def code(self) -> int | None:
        """The number the record keeps: the exit code, minus the signal, 127 when it could not
        start; None when the worker was lost (nobody knows how it ended)."""
        if self.exit_code is not None:
            return self.exit_code
        if self.signal is not None:
            return -self.signal
        return None if self.lost else COULD_NOT_START

    @property
    def started(self) -> bool:
        return self.error is None or self.lost


class Executor(Protocol):
    @property
    def capacity(self) -> int | None:
        """How many attempts it can run at once; None when only the run's max_parallel limits it."""
        ...

    async def open(self) -> None:
        """Before the run's first attempt: reach what it runs on (a cluster), or raise a
        UsageError saying why it cannot; the capacity is known once this returns."""
        ...

    async def run(
        self,
        request: ExecRequest,
        *,
        sinks: Mapping[str, Sink],
        on_start: Callable[[StartNotice], None],
    ) -> ExecResult: ...

    def abandon(self) -> None:
        """Kill at once whatever is still running; called when the event loop is already gone."""
        ...

    async def aclose(self) -> None:
        """The end of a run: release what the executor holds and end anything that escaped."""
        ...


class AnnouncesStopping(Protocol):
    """An executor that says when it starts stopping an attempt (see `run_attempt`)."""

    async def run(
        self,
        request: ExecRequest,
        *,
        sinks: Mapping[str, Sink],
        on_start: Callable[[StartNotice], None],
        on_stopping: OnStopping,
    ) -> ExecResult: ...


def note_stopped(cancelled: BaseException, code: int | None) -> None:
    """On the CancelledError that stopped an attempt: the code its process ended with."""
    cancelled.wtflow_exit_code = code  # type: ignore[attr-defined]


def stopped_code(cancelled: BaseException) -> int | None:
    """What `note_stopped` said, None when the executor could not say (a remote worker)."""
    code: int | None = getattr(cancelled, "wtflow_exit_code", None)
    return code


@functools.cache
def _takes(kind: type[Any], method: str, parameter: str) -> bool:
    return parameter in inspect.signature(getattr(kind, method)).parameters


def announces_stopping(executor: Executor) -> bool:
    """Whether the executor's `run()` takes `on_stopping`."""
    return _takes(type(executor), "run", "on_stopping")


async def open_executor(executor: Executor, workflow: Workflow) -> None:
    """`executor.open()`, with the workflow if it takes it (see the module's docstring)."""
    if _takes(type(executor), "open", "workflow"):
        await executor.open(workflow=workflow)  # type: ignore[call-arg]
    else:
        await executor.open()


async def run_attempt(
    executor: Executor,
    request: ExecRequest,
    *,
    sinks: Mapping[str, Sink],
    on_start: Callable[[StartNotice], None],
    on_stopping: OnStopping,
) -> ExecResult:
    """`executor.run()`, with `on_stopping` if it takes it (an executor written without it still runs)."""
    if announces_stopping(executor):
        stopping = cast("AnnouncesStopping", executor)
        return await stopping.run(request, sinks=sinks, on_start=on_start, on_stopping=on_stopping)
    return await executor.run(request, sinks=sinks, on_start=on_start)


def default_executor(config: Config) -> Executor:
    """The executor a run uses when none is given: processes on this machine, or on the Dask
    cluster `[run] executor` names."""
    if config.run.executor != "local":
        return _dask_executor(config)
    from wtflow.executors.local import LocalExecutor  # the engine stays free of local-process code

    return LocalExecutor(kill_grace=config.run.kill_grace)


def _dask_executor(config: Config) -> Executor:
    from wtflow.errors import UsageError

    try:  # imported only here: the local path never pays for dask
        from wtflow.executors.dask import DaskExecutor
    except ImportError as e:
        raise UsageError(
            f"executor {config.run.executor!r} needs dask.distributed, which is missing ({e.name}); "
            "pip install 'wtflow[dask]'"
        ) from None
    return DaskExecutor(config.run.executor, kill_grace=config.run.kill_grace)
