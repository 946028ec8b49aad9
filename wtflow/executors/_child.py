"""Runs a PyFunc inside a freshly forked child; never returns."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import inspect
import io
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from wtflow.dynamic import returned_nodes, save
from wtflow.errors import shown
from wtflow.executables import PyFunc
from wtflow.model import RESULT_FILE


def detach() -> None:
    """What a PyFunc's process does first, whatever it runs: a session of its own, signals as a
    fresh process has them, stdin from /dev/null, and its own sys.stdin, sys.stdout and
    sys.stderr. A spare of the fork server does it before its request comes, off the path of the
    node: the streams alone were two fifths of what came between a request and its function."""
    os.setsid()
    # The parent's event loop wrote signals to its self-pipe; this process has no loop.
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)  # ignored by the process it came from, perhaps
    if become_subreaper():
        signal.signal(signal.SIGTERM, _end_descendants_then_die)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    # Until the node's own pipes are put on fds 1 and 2, a pipe nobody reads stands in for them:
    # the text files made now are then what they would be on those (neither seekable nor a
    # terminal), whatever the parent's stdout is. The parent's objects hold its buffers.
    read, write = os.pipe()
    os.dup2(write, 1)
    os.dup2(write, 2)
    os.close(read)
    os.close(write)
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True, write_through=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True, write_through=True)


def run_forked(
    func: PyFunc,
    env: Mapping[str, str],
    cwd: Path | None,
    out_fd: int,
    err_fd: int,
    *,
    detached: bool = False,
) -> None:
    code = 70  # EX_SOFTWARE, if even the set-up below fails
    try:
        if not detached:
            detach()
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        # Inherited pipes of other nodes would keep their readers from seeing EOF.
        os.closerange(3, max_fd())
        _become(env)
        _name_after_run(env)
        if cwd is not None:
            os.chdir(cwd)
        code = _call(func)
        _end_descendants()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _name_after_run(env: Mapping[str, str]) -> None:
    run_id, prctl = env.get("WTFLOW_RUN_ID"), _prctl()
    if run_id and prctl is not None:
        prctl(_PR_SET_NAME, f"{NAME_PREFIX}{run_id[:8]}".encode(), 0, 0, 0)


def _become(env: Mapping[str, str]) -> None:
    """Make os.environ `env`, changing only what differs: it is the parent's but for a few
    variables, and rewriting all of it (a putenv and the pages it touches, each) cost about a
    millisecond a child here."""
    environ = os.environ
    for key in [k for k in environ if k not in env]:
        del environ[key]
    for key, value in env.items():
        if environ.get(key) != value:
            environ[key] = value


# A forked daemon keeps the environment of the process it was forked from (procfs shows the
# environment given at exec), so the token wtflow finds escapees by is not there. Instead the
# PyFunc's process becomes a subreaper: orphans of its descendants (a double fork, setsid) are
# handed to it rather than to init, and it ends them when it ends, on its own or by SIGTERM.
_PR_SET_CHILD_SUBREAPER = 36
# For the same reason a PyFunc's process is named (comm, as `ps` shows it) after its run:
# `wtflow kill` finds it by that name when the run's watchdog and fork server died with it.
_PR_SET_NAME = 15
NAME_PREFIX = "wtflow:"  # then the run id's first 8 characters: the 15 a name may take


@functools.cache
def _prctl() -> Callable[..., int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: the token is all there is
        return None


def prepare() -> None:
    """Look up prctl(2) in the process PyFuncs are forked from, once: in each child the lookup
    (dlopen, dlsym) cost more than the rest of its start."""
    _prctl()


def become_subreaper() -> bool:
    prctl = _prctl()
    return prctl is not None and prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def _living_children() -> list[int]:
    me = str(os.getpid())
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if fields[1].decode() == me and fields[0] != b"Z":
                found.append(int(entry))
    return found


def _end_descendants() -> None:
    """SIGKILL and reap every child, including orphans handed to us, until none is left."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return  # no children at all: the common case costs one system call
        if pid:
            continue  # reaped one that had ended
        living = _living_children()
        for child in living:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        if living:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(-1, 0)
        else:
            time.sleep(0.001)  # an orphan on its way to us: procfs does not show it as ours yet


def _end_descendants_then_die(signum: int, frame: object) -> None:
    _end_descendants()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _call(func: PyFunc) -> int:
    try:
        result = func.func(*func.args, **func.kwargs)
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
        if not _save_result(func, result):
            return 1
    except SystemExit as e:
        if e.code is None:
            return 0
        if isinstance(e.code, int):
            return e.code & 0xFF
        sys.stderr.write(f"{e.code}\n")
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


async def _await(awaitable: object) -> Any:
    return await awaitable  # type: ignore[misc]


def _save_result(func: PyFunc, value: Any) -> bool:
    """Write what the function returned to `result.json` in the attempt's folder; False (after
    saying why on stderr) when JSON cannot hold it, which fails the node: a result is never
    dropped silently. None means no result; returned nodes are pickled for the engine instead
    (dynamic children, wtflow.dynamic)."""
    if value is None:
        return True
    nodes = returned_nodes(value)
    if nodes is not None:
        folder = os.environ.get("WTFLOW_ARTIFACTS")
        if folder:
            try:
                save(nodes, Path(folder))
            except Exception as e:  # a lock, a generator...: what cannot travel fails the node, saying so
                sys.stderr.write(
                    f"wtflow: the nodes {func.describe()} returned cannot be sent to wtflow "
                    f"({type(e).__name__}: {e}); keep what they hold picklable (functions, data, artifacts)\n"
                )
                return False
        return True
    try:
        data = json.dumps(value, allow_nan=False, default=_refuse)
    except (TypeError, ValueError) as e:
        sys.stderr.write(
            f"wtflow: the result of {func.describe()} cannot be saved as JSON: {e}; "
            "return dicts, lists, str, int, float, bool or None (e.g. convert it with str() or a dict)\n"
        )
        return False
    folder = os.environ.get("WTFLOW_ARTIFACTS")
    if folder:  # absent only when a PyFunc is run outside wtflow's engine
        # Owner-only, like the streams: a result may hold what the function was given.
        fd = os.open(Path(folder) / RESULT_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w", encoding="utf-8") as f:
            f.write(data)
    return True


def _refuse(value: object) -> Any:
    kind = type(value)
    raise TypeError(f"a {kind.__module__}.{kind.__qualname__} is not JSON ({shown(value)})")


def max_fd() -> int:
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (ValueError, OSError):
        return 4096
