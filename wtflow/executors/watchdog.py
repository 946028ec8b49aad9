"""The orchestrator's side of the watchdog (`_watchdog_process.py`): start it, tell it, close it.

SIGKILL cannot be caught, so nothing in this process can end its nodes when it is killed. The
watchdog, a small separate process, learns of each run and each process group over a pipe whose
write end only this process holds; the pipe's end of file tells it this process is gone.

It is a new interpreter, not a fork of this one: a forked child living as long as the run would
share the orchestrator's memory, and every page the orchestrator then writes would be copied
(measured: a 200-node chain 1.35x slower). Starting it costs this process one vfork; the
interpreter's start-up happens beside the run, and the lines sent meanwhile wait in the pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import subprocess
import sys
from pathlib import Path

_SCRIPT = str(Path(__file__).with_name("_watchdog_process.py"))
# Past the orchestrator's death nobody reads the nodes' output any more, and the promise is
# that everything is gone within 2 s: so at most 1 s between SIGTERM and SIGKILL.
_MAX_GRACE = 1.0


class Watchdog:
    """One watchdog process; `tell` is cheap (one write of a short line to a pipe)."""

    def __init__(self, kill_grace: float) -> None:
        read, self._write = os.pipe()  # both close-on-exec: no node inherits the write end
        with contextlib.suppress(OSError):  # room for what a busy run says while the watchdog gathers
            fcntl.fcntl(self._write, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
        grace = str(min(kill_grace, _MAX_GRACE))
        try:
            self._process: subprocess.Popen[bytes] | None = subprocess.Popen(
                [sys.executable, "-I", "-S", _SCRIPT, str(os.getpid()), grace],
                stdin=read,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                # Its own session: a Ctrl-C at the terminal is for the orchestrator, which ends
                # its nodes itself and then closes the watchdog.
                start_new_session=True,
            )
        except OSError:
            self._process = None  # no watchdog: the run goes on, as it did before there was one
        finally:
            os.close(read)

    def tell(self, line: str) -> None:
        if self._write < 0:
            return
        try:
            os.write(self._write, f"{line}\n".encode())
        except OSError:  # it died (killed from outside): nothing to tell any more
            self._close()

    async def aclose(self) -> None:
        """The run ended cleanly: the watchdog is killed (it must end nothing) and reaped.

        Killed rather than told `exit`: it may still be starting up, and waiting for that would
        add its start-up to the end of every short run."""
        process = self._dismiss()
        if process is not None:
            await _exited(process.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(process.wait, 10)  # it has exited: this only reaps

    def abandon(self) -> None:
        """The loop is gone and the executor has killed everything itself: dismiss the watchdog."""
        process = self._dismiss()
        if process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)

    def _dismiss(self) -> subprocess.Popen[bytes] | None:
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGKILL)  # before closing the pipe: no end of file seen
        self._close()
        return process

    def _close(self) -> None:
        if self._write >= 0:
            os.close(self._write)
            self._write = -1


async def _exited(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)
    except OSError:  # gone already, or no pidfd (old kernel): the wait in a thread does it
        return
    loop = asyncio.get_running_loop()
    gone: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not gone.done():
            gone.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await gone
    finally:
        loop.remove_reader(fd)
        os.close(fd)
