"""Runs a PyFunc inside a freshly forked child; never returns."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
import os
import signal
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path

from wtflow.executables import PyFunc


def run_forked(func: PyFunc, env: Mapping[str, str], cwd: Path | None, out_fd: int, err_fd: int) -> None:
    code = 70  # EX_SOFTWARE, if even the set-up below fails
    try:
        os.setsid()
        # The parent's event loop wrote signals to its self-pipe; this process has no loop.
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        # Inherited pipes of other nodes would keep their readers from seeing EOF.
        os.closerange(3, _max_fd())
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True, write_through=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True, write_through=True)
        os.environ.clear()
        os.environ.update(env)
        if cwd is not None:
            os.chdir(cwd)
        code = _call(func)
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _call(func: PyFunc) -> int:
    try:
        result = func.func(*func.args, **func.kwargs)
        if inspect.isawaitable(result):
            asyncio.run(_await(result))
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


async def _await(awaitable: object) -> None:
    await awaitable  # type: ignore[misc]


def _max_fd() -> int:
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (ValueError, OSError):
        return 4096
