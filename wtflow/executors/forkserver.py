"""PyFuncs forked from a single-threaded copy of the orchestrator, made before any thread.

`os.fork()` in a process with threads copies the calling thread only: a lock another thread
held at that instant (SQLite's allocator mutex under the recorder's writer, a logging
handler's, one in any C extension) stays locked for ever in the child, and Python 3.12 warns on
every such fork. So a run that has PyFuncs forks this server once, at its start, before the
recorder or any worker thread exists; each PyFunc is then forked from the server.

The server is a copy of the orchestrator made once the tree was built, so the workflow's
modules, `__main__`, closures and lambdas are all there. A request names the PyFunc, its
arguments and everything else of the tree by identity (pickle's persistent ids: an object that
existed at the fork is the same object in the server) and pickles the rest: the environment,
nodes grown since. What the run changes in the tree afterwards (the artifacts it binds, each
node's status) goes with each request, so a function reading `n1.stdout_artifact` from a
closure or a global finds the file as it would in the orchestrator. Changes your own code makes
in the orchestrator meanwhile (a listener's) are not seen there.

Each PyFunc's process is forked ahead of its request, while the previous one runs (`_Spare`):
forking a copy of the orchestrator costs milliseconds, which a sequence of PyFuncs then does not
wait for. The spare is handed the request (and the pipes) once the orchestrator knows its pid.

Its replies are lines on the same socket:

    S <request> <pid>           started (the child is handed the request only after this)
    F <request> <why>           it could not fork: the node cannot start
    N <request> <why>           the request could not be read: the orchestrator forks that
                                PyFunc itself, as when a request cannot be pickled or the
                                server is gone
    E <pid> <wait status>       a child it forked has ended and been reaped
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import io
import itertools
import os
import pickle
import selectors
import signal
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from wtflow import model
from wtflow.executables import Command, PyFunc
from wtflow.executors._child import become_subreaper, detach, max_fd, prepare, run_forked
from wtflow.model import Artifact, Node, Placed, Workflow

# One request is one datagram of a SOCK_SEQPACKET socket (the pipes' fds ride on it); a bigger
# one (huge arguments of a grown node) is sent as a file in memory (memfd), its fd beside them.
_MAX_REQUEST = 128 * 1024
_TREE = (Workflow, Node, Placed, Artifact, PyFunc, Command)
_SCALARS = (str, bytes, int, float, bool, type(None))
_ABSENT = object()
# What a run changes in the objects of the tree (model.changed says when).
_STATE = ((Artifact, ("_path", "_paths")), (Node, ("status", "retcode", "attempts")))
# The exit code of a PyFunc whose server died before saying how it ended: the node fails.
LOST = 70


def _known(workflow: Workflow) -> dict[int, object]:
    """Every object of the tree by its id: nodes, artifacts, executables, their functions and
    whatever their arguments hold (the contents of lists, tuples, dicts and sets)."""
    known: dict[int, object] = {}
    stack: list[object] = [workflow]
    while stack:
        obj = stack.pop()
        if isinstance(obj, _SCALARS) or id(obj) in known:
            continue
        known[id(obj)] = obj
        if isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        elif isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, Placed):  # slotted: no vars()
            stack.extend(getattr(obj, f.name) for f in dataclasses.fields(obj))
        elif isinstance(obj, _TREE):
            stack.extend(vars(obj).values())
    return known


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, known: Mapping[int, object]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._known = known

    def persistent_id(self, obj: Any) -> int | None:
        key = id(obj)
        return key if self._known.get(key, _ABSENT) is obj else None


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, known: Mapping[int, object]) -> None:
        super().__init__(file)
        self._known = known

    def persistent_load(self, pid: Any) -> object:
        return self._known[pid]


class ForkServer:
    """The orchestrator's side: start the server, ask it for PyFuncs, hear how they ended."""

    def __init__(self, pid: int, sock: socket.socket, known: dict[int, object]) -> None:
        self.pid = pid
        self._sock = sock
        self._known = known
        self._ids = itertools.count()
        self._starting: dict[int, asyncio.Future[int | str | None]] = {}
        self._ends: dict[int, asyncio.Future[int]] = {}
        self._changed: dict[int, Artifact | Node] = {}  # since the last request
        self.alive = True
        self._loop = asyncio.get_running_loop()
        model.WATCHERS.append(self._change)
        self._loop.add_reader(sock.fileno(), self._readable)

    @classmethod
    def start(cls, workflow: Workflow) -> ForkServer | None:
        """Fork the server now (call it before any thread starts); None if this system cannot."""
        if not hasattr(os, "pidfd_open") or not hasattr(socket, "send_fds"):
            return None
        known = _known(workflow)
        prepare()  # before the fork: the server's children inherit it
        try:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        except OSError:
            return None
        for stream in (sys.stdout, sys.stderr):  # or the server's children print it again
            with contextlib.suppress(Exception):
                stream.flush()
        gc.freeze()  # see LocalExecutor._fork: the server's children must not walk our objects
        try:
            pid = os.fork()
            if pid == 0:  # pragma: no cover (the server leaves through os._exit)
                _serve(theirs, ours.fileno(), known)
        except OSError:
            ours.close()
            return None
        finally:
            gc.unfreeze()
            theirs.close()
        ours.setblocking(False)
        return cls(pid, ours, known)

    def _change(self, obj: Artifact | Node) -> None:
        if self._known.get(id(obj), _ABSENT) is obj:
            self._changed[id(obj)] = obj

    async def spawn(
        self, func: PyFunc, env: Mapping[str, str], cwd: Path | None, out_w: int, err_w: int
    ) -> int | str | None:
        """Fork `func` in the server: its pid, why it could not start, or None when the caller
        should fork it itself (what the request holds cannot be pickled or read back, or the
        server is gone)."""
        if not self.alive:
            return None
        changes = [(obj, _state(obj)) for obj in self._changed.values()]
        buffer = io.BytesIO()
        try:
            # The environment as one bytes object: pickled by the C pickler alone, its hundred-odd
            # strings cost no persistent_id call each (that was most of a request's pickling).
            environment = pickle.dumps(dict(env), protocol=pickle.HIGHEST_PROTOCOL)
            _Pickler(buffer, self._known).dump((changes, func, environment, cwd))
        except Exception:  # a lock, a generator in the arguments of a grown node...
            return None
        payload, fds, spill = buffer.getvalue(), [out_w, err_w], None
        if len(payload) > _MAX_REQUEST:  # goes in a file in memory, its fd beside the pipes'
            try:
                spill = _in_memory_file(payload)
            except (OSError, AttributeError):  # no memfd on this system
                return None
            payload, fds = b"", [*fds, spill]
        request = next(self._ids)
        started: asyncio.Future[int | str | None] = self._loop.create_future()
        self._starting[request] = started
        try:
            await self._send(request.to_bytes(8, "little") + payload, fds)
        except OSError:
            self._starting.pop(request, None)
            self._lost()
            return None
        finally:
            if spill is not None:
                os.close(spill)
        self._changed.clear()  # the server has them now
        try:
            return await asyncio.shield(started)
        except asyncio.CancelledError:
            # It is forked all the same: it must not outlive the cancelled start.
            outcome = await _settled(started)
            if isinstance(outcome, int):
                # Its group too, if it has made it already (its first act; maybe not yet).
                for kill in (os.kill, os.killpg):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        kill(outcome, signal.SIGKILL)
                await asyncio.shield(self.ended(outcome))
                self.forget(outcome)
            raise
        finally:
            self._starting.pop(request, None)

    async def _send(self, data: bytes, fds: list[int]) -> None:
        while True:
            try:
                socket.send_fds(self._sock, [data], fds)
                return
            except BlockingIOError:  # the server is busy forking: wait until it reads again
                writable = self._loop.create_future()
                self._loop.add_writer(self._sock.fileno(), writable.set_result, None)
                try:
                    await writable
                finally:
                    self._loop.remove_writer(self._sock.fileno())

    def ended(self, pid: int) -> asyncio.Future[int]:
        """Resolves with the exit code (negative: the signal) of a process the server forked."""
        future = self._ends.get(pid)
        if future is None:
            future = self._ends[pid] = self._loop.create_future()
            if not self.alive:
                self._when_gone(pid, future)
        return future

    def _when_gone(self, pid: int, future: asyncio.Future[int]) -> None:
        """With the server gone, nobody can say how `pid` ends: LOST, once it has ended."""
        try:
            fd = os.pidfd_open(pid)
        except OSError:  # it has ended already
            future.set_result(LOST)
            return

        def gone() -> None:
            self._loop.remove_reader(fd)
            os.close(fd)
            if not future.done():
                future.set_result(LOST)

        self._loop.add_reader(fd, gone)

    def forget(self, pid: int) -> None:
        self._ends.pop(pid, None)

    def _readable(self) -> None:
        while True:
            try:
                message = self._sock.recv(256)
            except BlockingIOError:
                return
            except OSError:
                message = b""
            if not message:
                self._lost()
                return
            self._heard(message.decode())

    def _heard(self, message: str) -> None:
        kind, key, rest = message.split(" ", 2)
        if kind == "E":
            future = self.ended(int(key))
            if not future.done():
                future.set_result(os.waitstatus_to_exitcode(int(rest)))
            return
        started = self._starting.get(int(key))
        if started is not None and not started.done():
            started.set_result(int(rest) if kind == "S" else None if kind == "N" else rest)

    def _lost(self) -> None:
        """The server is gone (killed from outside): later PyFuncs fork from here again."""
        if not self.alive:
            return
        self.alive = False
        self._loop.remove_reader(self._sock.fileno())
        for started in self._starting.values():
            if not started.done():
                started.set_result(None)
        for pid, end in self._ends.items():
            if not end.done():
                self._when_gone(pid, end)

    async def aclose(self) -> None:
        """The run is over: the server sees the end of its socket and exits; reap it."""
        self._close()
        await asyncio.to_thread(self._reap)

    def abandon(self) -> None:
        self._close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self._reap()

    def _close(self) -> None:
        with contextlib.suppress(ValueError):
            model.WATCHERS.remove(self._change)
        if self.alive:
            self._loop.remove_reader(self._sock.fileno())
            self.alive = False
        self._sock.close()

    def _reap(self) -> None:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def _state(obj: Artifact | Node) -> dict[str, object]:
    for kind, names in _STATE:
        if isinstance(obj, kind):
            return {name: getattr(obj, name) for name in names}
    return {}


async def _settled(future: asyncio.Future[int | str | None]) -> int | str | None:
    while not future.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(future)
    return future.result()


def _serve(sock: socket.socket, orchestrators_end: int, known: Mapping[int, object]) -> NoReturn:
    """The server's life, in the forked copy: fork each PyFunc asked for, report how each ended."""
    code = 0
    try:
        os.setsid()  # a Ctrl-C at the terminal is for the orchestrator, which stops the nodes
        # What a PyFunc's process leaves when it dies without ending its descendants (its own
        # SIGTERM handler put in place of the one that does, then SIGKILLed) comes here, not to
        # init: the server ends it (_end_adopted).
        become_subreaper()
        with contextlib.suppress(ValueError):  # the run's loop wrote signals to its self-pipe
            signal.set_wakeup_fd(-1)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        gc.disable()  # nothing of the orchestrator's may be finalized here: it would close their fds
        keep = sock.fileno()
        os.close(orchestrators_end)
        # The orchestrator's files (its record, other nodes' pipes, the watchdog's pipe) are not
        # the server's to hold: a pipe held here would keep its reader from seeing the end.
        os.closerange(3, keep)
        os.closerange(keep + 1, max_fd())
        _loop(sock, known)
    except BaseException:
        code = 70
    os._exit(code)


def _loop(sock: socket.socket, known: Mapping[int, object]) -> None:
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    children: dict[int, int] = {}  # pidfd -> pid
    spare = _Spare.fork(sock, known)
    try:
        while True:
            for key, _ in selector.select():
                if key.fileobj is sock:
                    try:
                        message, fds, _, _ = socket.recv_fds(sock, _MAX_REQUEST + 8, 3)
                    except InterruptedError:
                        continue
                    if not message:
                        return  # the orchestrator closed its end, or died: the run is over
                    if not isinstance(spare, _Spare):  # none could be forked last time: try again
                        spare = _Spare.fork(sock, known)
                    started = _hand_over(message, fds, known, sock, spare)
                    if isinstance(started, int):
                        spare = _Spare.fork(sock, known)  # the next one, while this one runs
                        pidfd = os.pidfd_open(started)
                        children[pidfd] = started
                        selector.register(pidfd, selectors.EVENT_READ)
                else:
                    pidfd = key.fd
                    selector.unregister(pidfd)
                    os.close(pidfd)
                    pid = children.pop(pidfd)
                    _, status = os.waitpid(pid, 0)
                    sock.sendall(f"E {pid} {status}".encode())
                    _end_adopted({*children.values(), spare.pid if isinstance(spare, _Spare) else 0})
    finally:
        if isinstance(spare, _Spare):
            spare.dismiss()
        selector.close()
        _end_running(children)
        _end_adopted(set())


# What the README promises for a killed orchestrator: its nodes gone within 2 s.
_GRACE = 1.5


def _end_running(children: dict[int, int]) -> None:
    """PyFuncs still running when the orchestrator's end closed: it died (a clean close comes
    after the last node). The watchdog is ending them too; the server does it all the same, as
    only it gets what they leave (SIGTERM, up to _GRACE seconds, then SIGKILL)."""
    if not children:
        return
    for pid in children.values():
        _kill_tree(pid, signal.SIGTERM)
    # Their pidfds only: the socket at its end would be readable at every turn.
    waiting = selectors.DefaultSelector()
    for pidfd in children:
        waiting.register(pidfd, selectors.EVENT_READ)
    deadline = time.monotonic() + _GRACE
    while children and (left := deadline - time.monotonic()) > 0:
        for key, _ in waiting.select(left):
            waiting.unregister(key.fd)
            os.close(key.fd)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(children.pop(key.fd), 0)
            _end_adopted(set(children.values()))
    waiting.close()
    for pidfd, pid in children.items():
        _kill_tree(pid, signal.SIGKILL)
        os.close(pidfd)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    children.clear()


def _end_adopted(ours: set[int]) -> None:
    """SIGKILL the server's children that are not its PyFuncs nor its spare: orphans handed to it
    as a subreaper. Each round's kills may hand over their own children, hence the rounds."""
    me = os.getpid()
    for _ in range(64):
        try:
            with open(f"/proc/{me}/task/{me}/children") as f:  # one read, not a walk of /proc
                adopted = [pid for pid in map(int, f.read().split()) if pid not in ours]
        except OSError:  # a kernel without it: init gets them, as it would without a subreaper
            return
        if not adopted:
            return
        for pid in adopted:
            _kill_tree(pid, signal.SIGKILL)
        for pid in adopted:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def _kill_tree(pid: int, sig: int) -> None:
    for kill in (os.killpg, os.kill):  # its group if it leads one (setsid), and itself
        with contextlib.suppress(OSError):
            kill(pid, sig)


class _Spare:
    """A child forked ahead of the next request, waiting for it on a socket of its own.

    Forking this copy of the orchestrator costs milliseconds (its page tables); done while the
    previous PyFunc runs, that time is off the path of a sequence of PyFuncs. The spare is a copy
    of the server as it was after the last request, so it applies the changes of the request it
    is given, as the server does."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid, self.sock = pid, sock

    @classmethod
    def fork(cls, server: socket.socket, known: Mapping[int, object]) -> _Spare | str:
        """The spare, or why none could be forked (no memory, too many processes)."""
        try:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        except OSError as e:
            return e.strerror or str(e)
        try:
            pid = os.fork()
            if pid == 0:  # pragma: no cover (the spare leaves through os._exit)
                # The server's socket closed here, or the orchestrator would not see its end when
                # the server dies.
                _wait_then_run(theirs, known, close=(server, ours))
        except OSError as e:
            ours.close()
            return e.strerror or str(e)
        finally:
            theirs.close()
        return cls(pid, ours)

    def dismiss(self) -> None:
        """The run is over: the spare sees the end of its socket and leaves; reap it."""
        self.sock.close()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def _wait_then_run(
    sock: socket.socket, known: Mapping[int, object], close: tuple[socket.socket, ...]
) -> NoReturn:
    """The spare's life: the request the server hands over, once it has told the orchestrator
    this pid (so a server dying before then leaves no unknown PyFunc running), then the PyFunc.
    The end of its socket instead means the run is over, or the server died (and then the
    orchestrator gives up on this pid all the same)."""
    try:
        for other in close:
            other.close()
        detach()
        message, fds, _, _ = socket.recv_fds(sock, _MAX_REQUEST + 8, 3)
        sock.close()
        if message:
            try:
                func, env, cwd = _read(message, fds, known)
            except Exception as e:  # what the server read, this copy of it could not: say so, and fail
                os.write(
                    fds[1], f"wtflow: cannot read the PyFunc's request: {type(e).__name__}: {e}\n".encode()
                )
            else:
                gc.enable()  # the function's own garbage is collected as in any process
                run_forked(func, env, cwd, fds[0], fds[1], detached=True)
    finally:  # never back into the server's loop, whatever happened
        os._exit(LOST)


def _read(
    message: bytes, fds: list[int], known: Mapping[int, object]
) -> tuple[PyFunc, dict[str, str], Path | None]:
    """Unpickle a request (from its file in memory when it came with one) and apply the changes
    it carries to this process's copy of the tree."""
    if len(fds) not in (2, 3):
        raise ValueError(f"{len(fds)} file descriptors came with the request, not 2 or 3")
    if len(fds) == 3:  # a big request, in a file: read from its start, and left there for the spare
        with open(fds[2], "rb", closefd=False) as spill:
            spill.seek(0)
            message = message[:8] + spill.read()
    changes, func, environment, cwd = _Unpickler(io.BytesIO(message[8:]), known).load()
    env = pickle.loads(environment)
    for obj, state in changes:
        vars(obj).update(state)
    return func, env, cwd


def _hand_over(
    message: bytes, fds: list[int], known: Mapping[int, object], sock: socket.socket, spare: _Spare | str
) -> int | None:
    """Give a request to the spare: its pid to the orchestrator first, then the request."""
    request = int.from_bytes(message[:8], "little")
    try:
        try:
            _read(message, fds, known)  # the server's copy of the tree follows the run's, for later spares
        except Exception as e:
            sock.sendall(f"N {request} {type(e).__name__}: {e}".encode()[:200])
            return None
        if not isinstance(spare, _Spare):
            sock.sendall(f"F {request} cannot fork the PyFunc: {spare}".encode())
            return None
        sock.sendall(f"S {request} {spare.pid}".encode())
        # A spare killed from outside meanwhile cannot take it: the server reaps it, and the
        # orchestrator hears how it ended.
        with contextlib.suppress(OSError):
            socket.send_fds(spare.sock, [message], fds)
        spare.sock.close()
        return spare.pid
    finally:
        for fd in fds:
            os.close(fd)


def _in_memory_file(data: bytes) -> int:
    fd = os.memfd_create("wtflow-request", os.MFD_CLOEXEC)
    try:
        with open(fd, "wb", closefd=False) as f:
            f.write(data)
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd
