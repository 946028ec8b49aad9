"""The orchestrator's side of the watchdog (`_watchdog_process.py`): fork it, tell it, close it.

SIGKILL cannot be caught, so nothing in this process can end its nodes when it is killed. The
watchdog, a forked child, learns of each run and each process group over a pipe whose write end
only this process holds; the pipe's end of file tells it this process is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal

from wtflow.executors._watchdog_process import serve

# Past the orchestrator's death nobody reads the nodes' output any more, and the promise is
# that everything is gone within 2 s: so at most 1 s between SIGTERM and SIGKILL.
_MAX_GRACE = 1.0


class Watchdog:
    """One watchdog process; `tell` is cheap (one write of a short line to a pipe)."""

    def __init__(self, kill_grace: float) -> None:
        read, self._write = os.pipe()  # both close-on-exec: no node's program inherits them
        parent = os.getpid()
        gc.freeze()  # its collector must not touch (and so copy) the orchestrator's pages
        try:
            self._pid = os.fork()
            if self._pid == 0:  # pragma: no cover (the child leaves through os._exit)
                os.close(self._write)
                serve(read, parent, min(kill_grace, _MAX_GRACE))
        except OSError:
            self._pid = 0  # no watchdog: the run goes on, as it did before there was one
        finally:
            gc.unfreeze()
            os.close(read)

    def tell(self, line: str) -> None:
        if self._write < 0:
            return
        try:
            os.write(self._write, f"{line}\n".encode())
        except OSError:  # it died (killed from outside): nothing to tell any more
            self._close()

    async def aclose(self) -> None:
        """The run ended cleanly: the watchdog leaves without touching anything; reaped here."""
        self.tell("exit")
        self._close()
        if self._pid:
            try:
                async with asyncio.timeout(5):
                    await _exited(self._pid)
            except TimeoutError:  # stuck: it has nothing left to do
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                # It has exited (the pidfd said so) or been killed: this reaps, it does not wait.
                os.waitpid(self._pid, 0)  # noqa: ASYNC222
            self._pid = 0

    def abandon(self) -> None:
        """The loop is gone and the executor has killed everything itself: dismiss the watchdog."""
        self.tell("exit")
        self._close()
        if self._pid:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self._pid, os.WNOHANG)  # it leaves at once; if not yet, init reaps it

    def _close(self) -> None:
        if self._write >= 0:
            os.close(self._write)
            self._write = -1


async def _exited(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)
    except OSError:  # gone already, or no pidfd (old kernel): waitpid blocks at most a moment
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
