"""Runs executables as local processes, each in its own session and process group."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, TypeVar

from wtflow.executables import Command, PyFunc
from wtflow.executors import ExecRequest, ExecResult, OnStopping, Sink, StartNotice, note_stopped
from wtflow.executors._child import prepare, run_forked
from wtflow.executors._watchdog_process import token_holders
from wtflow.executors.forkserver import ForkServer
from wtflow.executors.watchdog import Watchdog

if TYPE_CHECKING:
    from wtflow.model import Workflow

_PIPE_SIZE = 1024 * 1024
CHUNK = _PIPE_SIZE  # one read can empty a full pipe
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_DEFAULT_PIPE_SIZE = 64 * 1024  # Linux
T = TypeVar("T")
TOKEN_VAR = "WTFLOW_PROCESS_TOKENS"  # read by _watchdog_process too, which imports nothing of wtflow


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is already empty
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # only a stranger's process reuses the id now
        return False
    return _has_running_member(pgid)


def _has_running_member(pgid: int) -> bool:
    # A killed grandchild is reparented to init and stays a zombie in the group until init gets
    # round to reaping it (a second or more on some machines); it has ended all the same.
    with os.scandir("/proc") as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[0] != b"Z" and int(fields[2]) == pgid:
                return True
    return False


def processes_with_token(token: str) -> list[int]:
    """PIDs whose environment carries `token`: descendants that left the group (setsid, double fork)."""
    return token_holders({token})


def kill_token(token: str) -> None:
    for pid in processes_with_token(token):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


class _Leader:
    """The node's own process: knows when it exited and reaps it exactly once."""

    def __init__(self, pid: int, popen: subprocess.Popen[bytes] | None) -> None:
        self.pid = pid
        self.popen = popen
        self.code: int | None = None
        self._ended = False  # its pidfd said so: asked again (stopping, reaping), no system call

    def poll(self) -> int | None:
        if self.code is None:
            if self.popen is not None:
                self.code = self.popen.poll()
            else:
                with contextlib.suppress(ChildProcessError):
                    pid, status = os.waitpid(self.pid, os.WNOHANG)
                    if pid:
                        self.code = os.waitstatus_to_exitcode(status)
        return self.code

    async def exited(self) -> None:
        """Resolve when the process itself ends, even while others still hold its pipes.

        asyncio's `Process.wait()` resolves only once every pipe is closed, so a node that left
        `sleep 100 &` behind would look "running" for 100 s. A pidfd says when the leader is gone."""
        if self._ended:
            return
        try:
            fd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            self._ended = True
            return
        except OSError:  # no pidfd (old kernel): poll
            while self.poll() is None:  # noqa: ASYNC110 (nothing to wait on but the clock)
                await asyncio.sleep(0.02)
            return
        try:
            await _readable(asyncio.get_running_loop(), fd)  # a pidfd turns readable when the process ends
            self._ended = True
        finally:
            os.close(fd)


class _Served(_Leader):
    """A PyFunc's process forked by the fork server, which reaps it and says how it ended."""

    def __init__(self, pid: int, server: ForkServer) -> None:
        super().__init__(pid, None)
        self._server = server
        self._end = server.ended(pid)

    def poll(self) -> int | None:
        if self.code is None and self._end.done():
            self.code = self._end.result()
            self._server.forget(self.pid)
        return self.code

    async def exited(self) -> None:
        await asyncio.shield(self._end)


def _has_pyfuncs(workflow: Workflow) -> bool:
    return any(isinstance(p.node.executable, PyFunc) for p in workflow.placed)


async def _stop(leader: _Leader, grace: float, token: str, *, leader_exited: bool) -> None:
    """SIGTERM to the group, up to `grace` seconds for it to empty, then SIGKILL (and token holders)."""
    pgid = leader.pid
    _signal_group(pgid, signal.SIGTERM)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    try:
        while loop.time() < deadline:
            # A leader still running keeps the group alive: no need to read /proc to know that. (A
            # zombie leader still counts as a member of its group until reaped, hence the poll.)
            if leader.poll() is not None and not _group_alive(pgid):
                break
            await asyncio.sleep(0.02)
    finally:  # also when Ctrl-C cuts the grace short: then the group goes at once
        _signal_group(pgid, signal.SIGKILL)  # what ignored SIGTERM
    if not leader_exited:
        # Stopped from outside (time limit, Ctrl-C): also what escaped the group with setsid.
        await asyncio.to_thread(kill_token, token)
    await leader.exited()
    leader.poll()


class _Pump:
    """Copies a pipe to its sink until EOF, then closes it; `done` resolves then.

    Chunks, not lines: a process may never print a newline. The pipe is read straight into one
    bytes object per chunk (a StreamReader would copy each one twice more through its buffer),
    as much as the pipe holds at a time: 1 GiB of output is about a thousand reads. (splice(2)
    into the file was tried: it drains the pipe a page at a time and came out slower.)

    The reads are made by the loop's readiness callback itself, not by a task it wakes: a pipe
    fed 8 KiB at a time is tens of thousands of rounds a gigabyte, and a future and a task step
    a round were most of what a round cost. Each round reads once and returns, so a process
    writing faster than we read leaves the other nodes, the listeners and the time limits their
    turn. Reading only when the loop says so also keeps the two pipes in the order their bytes
    came: a read at once could find stderr's line while stdout's, written first, waited for the
    next round, and `logs` would show them the wrong way round.

    A sink that may make the pump wait (`write` suspends: a remote log's window) is written
    from a task, the pipe unwatched meanwhile; a sink with `write_now` never waits."""

    def __init__(self, fd: int, sink: Sink) -> None:
        self._loop = asyncio.get_running_loop()
        self._fd, self._sink = fd, sink
        self._write_now: Callable[[bytes], None] | None = getattr(sink, "write_now", None)
        self._grown = False
        self._writing: asyncio.Task[None] | None = None
        self.done: asyncio.Future[None] = self._loop.create_future()
        os.set_blocking(fd, False)
        self._loop.add_reader(fd, self._read)

    def _read(self) -> None:
        try:
            chunk = os.read(self._fd, CHUNK)
        except BlockingIOError:
            return
        except Exception as e:
            self._end(e)
            return
        if not chunk:
            self._end(None)
            return
        if not self._grown and len(chunk) >= _DEFAULT_PIPE_SIZE:
            # The pipe filled up: a big writer. Fewer wake-ups per megabyte with a bigger pipe;
            # done only now because resizing costs more than most nodes print.
            self._grown = True
            with contextlib.suppress(OSError):
                fcntl.fcntl(self._fd, _F_SETPIPE_SZ, _PIPE_SIZE)
        if self._write_now is None:
            self._loop.remove_reader(self._fd)
            self._writing = self._loop.create_task(self._write(chunk))
            return
        try:
            self._write_now(chunk)
        except Exception as e:
            self._end(e)

    async def _write(self, chunk: bytes) -> None:
        error: Exception | None = None
        try:
            await self._sink.write(chunk)
        except Exception as e:
            error = e
        self._writing = None  # done: not to be cancelled by the close below
        if error is not None:
            self._end(error)
        elif not self.done.done():
            self._loop.add_reader(self._fd, self._read)

    def _end(self, error: BaseException | None) -> None:
        if self.done.done():
            return
        if error is None:
            self.done.set_result(None)
        else:
            self.done.set_exception(error)
        self.close()

    def close(self) -> None:
        """Stop reading (a pump that never sees EOF: a process outside the group holds the pipe)."""
        if self._writing is not None:
            self._writing.cancel()
        if self._fd < 0:
            return
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
        self._fd = -1
        if not self.done.done():
            self.done.cancel()


async def _readable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():  # the loop may report the fd again before we remove the reader
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


_Started = tuple[_Leader, int, int]


@contextlib.contextmanager
def _pipes() -> Iterator[tuple[int, int, int, int]]:
    """A node's stdout and stderr pipes: the write ends are the child's, closed here once it is
    started; the read ends are ours, closed here if starting it raised."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        yield out_r, out_w, err_r, err_w
    except BaseException:
        os.close(out_r)
        os.close(err_r)
        raise
    finally:
        os.close(out_w)
        os.close(err_w)


def _started(leader: _Leader | T, out_r: int, err_r: int) -> _Started | T:
    """The started process and the read ends; else (why it did not start) the read ends closed."""
    if isinstance(leader, _Leader):
        return leader, out_r, err_r
    os.close(out_r)
    os.close(err_r)
    return leader


def _unheard(reason: str) -> None:
    pass


# What Popen's restore_signals sets back to their default (Python ignores them), and the signals a
# process may have been started with ignored (`wtflow cluster`'s workers, a job put in the
# background by a script): exec keeps an ignored signal ignored, so a node would not hear the
# SIGTERM that stops it, nor its own program's Ctrl-C.
_STOPPING_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM)
_DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, *_STOPPING_SIGNALS)


def _ignored_stopping_signals() -> list[signal.Signals]:
    return [sig for sig in _STOPPING_SIGNALS if signal.getsignal(sig) is signal.SIG_IGN]


def _default_dispositions(ignored: list[signal.Signals]) -> Callable[[], None]:
    def reset() -> None:  # in the child, between fork and exec: system calls only
        for sig in ignored:
            signal.signal(sig, signal.SIG_DFL)

    return reset


def _posix_spawn(argv: list[str], env: dict[str, str], out_w: int, err_w: int) -> int:
    """The process started as Popen starts it (in a new session, stdin from /dev/null, Python's
    ignored signals set back), for half the CPU: no pipe for exec errors (posix_spawn reports
    them itself), no environment encoded in Python, no Popen. It takes no cwd and searches no
    PATH, so Popen starts the rest. Every file this process opens is close-on-exec (Python's
    default), which is what Popen's close_fds would otherwise see to."""
    return os.posix_spawn(
        argv[0],
        argv,
        env,
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, out_w, 1),
            (os.POSIX_SPAWN_DUP2, err_w, 2),
        ],
        setsid=True,
        setsigdef=_DEFAULT_SIGNALS,
    )


class LocalExecutor:
    """Starts each executable in a new session; a PyFunc is forked by the run's fork server
    (`forkserver.py`), or by this process when there is none.

    It owns everything about local processes: the token each one carries in its environment
    (`WTFLOW_PROCESS_TOKENS`, to find those that left their group), the live process groups, and
    the sweep for escapees at the end of a run.

    `own_runs=False` is for a host whose runs are shared with other processes of this machine (the
    Dask workers of one machine run nodes of the same run): its watchdog then ends only this
    executor's attempts, and the sweep at the end of a run is the caller's."""

    def __init__(self, *, kill_grace: float = 2.0, own_runs: bool = True) -> None:
        self.kill_grace = kill_grace
        self._own_runs = own_runs
        self.host = socket.gethostname()
        self._base_env: dict[str, str] | None = None
        self._groups: set[int] = set()
        self._run_ids: set[str] = set()
        self._watchdog: Watchdog | None = None  # ends our processes if this one is SIGKILLed
        self._forkserver: ForkServer | None = None

    @property
    def capacity(self) -> int | None:
        return None  # the machine's cores are shared out by the run's max_parallel

    async def open(self, workflow: Workflow | None = None) -> None:
        """This machine is always there; a run with PyFuncs gets their fork server now, while
        the run has no thread yet (`forkserver.py` says why)."""
        if workflow is not None and self._forkserver is None and _has_pyfuncs(workflow):
            self._forkserver = ForkServer.start(workflow)

    def _environment(self, request: ExecRequest) -> dict[str, str]:
        if self._base_env is None:
            # Read once per run: copying os.environ decodes every variable, ~150 us a node.
            self._base_env = dict(os.environ)
        env = self._base_env.copy()
        env.update(request.env)
        attempt = request.attempt
        inherited = self._base_env.get(TOKEN_VAR)  # a wtflow run inside a node of another
        tokens = f"{attempt.run_id},{attempt.token}"
        env[TOKEN_VAR] = f"{inherited},{tokens}" if inherited else tokens
        return env

    async def _start(self, request: ExecRequest, env: dict[str, str]) -> _Started | str:
        # On the loop, even while other nodes run: vfork() holds it up until the child has
        # exec'd (most of a millisecond), but on 2 cores worker threads for that cost more in
        # context switches and the GIL than they won (artifacts.AttemptOutput.create).
        executable = request.executable
        if isinstance(executable, PyFunc) and self._forkserver is not None:
            served = await self._serve(executable, request, env)
            if served is not None:
                return served
        return self._spawn(request, env)

    def _spawn(self, request: ExecRequest, env: dict[str, str]) -> _Started | str:
        with _pipes() as (out_r, out_w, err_r, err_w):
            executable = request.executable
            if isinstance(executable, Command):
                leader = self._popen(executable, request, env, out_w, err_w)
            else:
                leader = self._fork(executable, request, env, out_w, err_w)
        return _started(leader, out_r, err_r)

    async def _serve(self, func: PyFunc, request: ExecRequest, env: dict[str, str]) -> _Started | str | None:
        """The PyFunc forked by the fork server; None when it must be forked here instead."""
        server = self._forkserver
        assert server is not None
        with _pipes() as (out_r, out_w, err_r, err_w):
            pid = await server.spawn(func, env, request.cwd, out_w, err_w)
        return _started(_Served(pid, server) if isinstance(pid, int) else pid, out_r, err_r)

    def _popen(
        self, command: Command, request: ExecRequest, env: dict[str, str], out_w: int, err_w: int
    ) -> _Leader | str:
        argv = command.argv
        try:
            if request.cwd is None and "/" in argv[0]:  # `/bin/sh -c ...`: nothing to look up
                return _Leader(_posix_spawn(argv, env, out_w, err_w), None)
            # Popen sets back only SIGPIPE and SIGXFSZ. A function run between fork and exec is
            # what it takes for the rest, so only a process that ignores them pays for it.
            ignored = _ignored_stopping_signals()
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
                env=env,
                cwd=request.cwd,
                start_new_session=True,
                preexec_fn=_default_dispositions(ignored) if ignored else None,
            )
        except OSError as e:  # the program or the cwd is missing
            return f"cannot start {command.describe()!r}: {e.strerror}: {e.filename}"
        return _Leader(popen.pid, popen)

    def _fork(
        self, func: PyFunc, request: ExecRequest, env: dict[str, str], out_w: int, err_w: int
    ) -> _Leader:
        # Flushed so the child does not print the parent's pending text a second time.
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        prepare()
        # The child's garbage collector must not walk the parent's objects: each page it touched
        # would be copied (copy-on-write). Frozen, they are outside every generation it collects.
        gc.freeze()
        try:
            pid = os.fork()
            if pid == 0:  # pragma: no cover (the child leaves through os._exit)
                run_forked(func, env, request.cwd, out_w, err_w)
        finally:
            gc.unfreeze()  # in this process only: the child keeps them frozen
        return _Leader(pid, None)

    async def run(
        self,
        request: ExecRequest,
        *,
        sinks: Mapping[str, Sink],
        on_start: Callable[[StartNotice], None],
        on_stopping: OnStopping | None = None,
    ) -> ExecResult:
        """Run to the end; the result says the exit code or the signal (or why it could not start).

        `on_stopping(reason)` is called as the time limit or a cancellation starts stopping it."""
        if self._watchdog is None:
            # Started with the first attempt: a run that executes nothing starts no watchdog.
            self._watchdog = Watchdog(self.kill_grace)
        run_id = request.attempt.run_id
        if self._own_runs and run_id not in self._run_ids:
            self._watchdog.tell(f"run {run_id}")  # before its first process: the token covers it
            self._run_ids.add(run_id)
        return await self._run(request, sinks, on_start, on_stopping or _unheard)

    async def _run(
        self,
        request: ExecRequest,
        sinks: Mapping[str, Sink],
        on_start: Callable[[StartNotice], None],
        on_stopping: OnStopping,
    ) -> ExecResult:
        started = await self._start(request, self._environment(request))
        if isinstance(started, str):
            return ExecResult(error=started)
        leader, out_r, err_r = started
        self._groups.add(leader.pid)
        self._tell(f"+ {leader.pid} {request.attempt.token}")
        pumps: list[_Pump] = []
        try:
            on_start(StartNotice(self.host, leader.pid))
            pumps.append(_Pump(out_r, sinks["stdout"]))
            pumps.append(_Pump(err_r, sinks["stderr"]))
        except BaseException:
            for pump in pumps:
                pump.close()
            for fd in (out_r, err_r)[len(pumps) :]:
                os.close(fd)
            await _stop(leader, self.kill_grace, request.attempt.token, leader_exited=False)
            self._forget(leader.pid)
            raise
        exited = timed_out = False
        cancelled: asyncio.CancelledError | None = None
        try:
            try:
                async with asyncio.timeout(request.timeout):
                    await leader.exited()
                exited = True
            except TimeoutError:
                timed_out = True
                on_stopping("timed out")
            except asyncio.CancelledError as e:
                cancelled = e
                on_stopping("cancelled")
                raise
            leader.poll()
        finally:
            # Exited: end what the node left running in its group (`cmd &`), which would hold the
            # pipes open and outlive the node. Cancelled (time limit, Ctrl-C): end the node itself.
            # The pumps keep draining meanwhile, so nothing blocks on a full pipe.
            try:
                await _stop(leader, self.kill_grace, request.attempt.token, leader_exited=exited)
                if cancelled is not None:
                    note_stopped(cancelled, leader.code)
                await self._finish_pumps(pumps, request.attempt.token)
            finally:
                self._forget(leader.pid)
        assert leader.code is not None
        return ExecResult.from_returncode(leader.code, timed_out=timed_out)

    def hurry(self) -> None:
        # Only the groups: the fork server still reaps its PyFuncs and says how they ended, and
        # each stop under way ends what left its group.
        for pgid in list(self._groups):
            _signal_group(pgid, signal.SIGKILL)

    def abandon(self) -> None:
        # Reached after a second Ctrl-C ended the loop at once: nothing may outlive us.
        for pgid in list(self._groups):
            _signal_group(pgid, signal.SIGKILL)
        self._groups.clear()
        self._sweep()
        if self._forkserver is not None:
            self._forkserver.abandon()
            self._forkserver = None
        if self._watchdog is not None:
            self._watchdog.abandon()
            self._watchdog = None

    async def aclose(self) -> None:
        await asyncio.to_thread(self._sweep)  # anything of these runs that escaped its group
        self._base_env = None
        if self._forkserver is not None:
            forkserver, self._forkserver = self._forkserver, None
            await forkserver.aclose()
        if self._watchdog is not None:
            watchdog, self._watchdog = self._watchdog, None
            await watchdog.aclose()

    def _tell(self, line: str) -> None:
        if self._watchdog is not None:
            self._watchdog.tell(line)

    def _forget(self, pgid: int) -> None:
        self._groups.discard(pgid)
        self._tell(f"- {pgid}")

    def _sweep(self) -> None:
        for run_id in list(self._run_ids):
            kill_token(run_id)
        self._run_ids.clear()

    async def _finish_pumps(self, pumps: list[_Pump], token: str) -> None:
        ends = [pump.done for pump in pumps]
        try:
            # Mostly both have seen their EOF by now (the pipes closed as the process ended):
            # then no wait, which would cost two turns of the loop a node.
            pending = {end for end in ends if not end.done()}
            if pending:
                _, pending = await asyncio.wait(pending, timeout=max(self.kill_grace, 0.5))
            if pending:
                # A process that left the group (setsid) still holds the pipes: end it.
                await asyncio.to_thread(kill_token, token)
                await asyncio.wait(pending, timeout=1.0)
        finally:
            for pump in pumps:  # those still open: the pipe's holder outlived even that
                pump.close()
        for end in ends:
            error = None if end.cancelled() else end.exception()
            if error is not None:
                raise error
