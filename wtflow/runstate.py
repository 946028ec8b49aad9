"""What one run found out about each node, kept by the engine apart from the user's objects.

The `Node`s are a description and may run again (in this engine or another); each run keeps its
own `NodeResult`s keyed by the node's preorder index, and copies them onto the nodes as they
change so that `node.status`, `node.retcode` and `node.attempts` read as the README shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import datetime
from types import FrameType
from typing import Any

from wtflow.errors import UsageError
from wtflow.model import Workflow, changed
from wtflow.status import Status


@dataclass(frozen=True, slots=True)
class NodeResult:
    status: Status = Status.PENDING
    exit_code: int | None = None  # the last attempt's; negative: ended by that signal
    attempts: int = 0  # attempts that ended
    started_at: datetime | None = None  # of the first attempt
    ended_at: datetime | None = None


class RunState:
    """The results of one run, one per node, in preorder."""

    def __init__(self, workflow: Workflow, run_id: str) -> None:
        self.workflow = workflow
        self.run_id = run_id
        self.results = [NodeResult()] * len(workflow.placed)
        for index in range(len(self.results)):
            self._mirror(index)

    def grown(self) -> None:
        """The workflow grew (dynamic children): a pending result for each node added."""
        start = len(self.results)
        self.results.extend([NodeResult()] * (len(self.workflow.placed) - start))
        for index in range(start, len(self.results)):
            self._mirror(index)

    def __getitem__(self, index: int) -> NodeResult:
        return self.results[index]

    def update(self, index: int, **changes: object) -> NodeResult:
        result = dataclasses.replace(self.results[index], **changes)  # type: ignore[arg-type]
        self.results[index] = result
        self._mirror(index)
        return result

    def _mirror(self, index: int) -> None:
        result, node = self.results[index], self.workflow.placed[index].node
        node.status, node.retcode, node.attempts = result.status, result.exit_code, result.attempts
        changed(node)

    def unfinished(self) -> list[int]:
        return [i for i, r in enumerate(self.results) if not r.status.is_final]

    def counts(self) -> dict[str, int]:
        return dict(Counter(r.status.value for r in self.results))


class Interrupts:
    """Which signal interrupted a run: SIGTERM, or SIGHUP (the terminal closed, ssh dropped),
    cancels the run's task as asyncio.Runner does for Ctrl-C, and each is noted first, so the
    record says 130, 143 or 129. A second one calls `hurry` (end every process now): the
    first's clean-up (`always` nodes, kill graces) is what it cuts short."""

    def __init__(self, hurry: Callable[[], None] | None = None) -> None:
        self.signal: int | None = None
        self._hurry = hurry

    @contextlib.contextmanager
    def watching(self, task: asyncio.Task[int]) -> Iterator[None]:
        self.signal = None
        loop, previous = asyncio.get_running_loop(), signal.getsignal(signal.SIGINT)
        # Under nohup SIGHUP is ignored, and must stay so.
        handled = [signal.SIGTERM] + (
            [signal.SIGHUP] if signal.getsignal(signal.SIGHUP) != signal.SIG_IGN else []
        )
        installed = False
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not the main thread
            for signum in handled:
                loop.add_signal_handler(signum, self._cancel, signum, task)
            installed = True
            if callable(previous):  # asyncio.Runner's own: it cancels the task; note why first

                def on_sigint(signum: int, frame: FrameType | None) -> None:
                    self._noted(signum)
                    previous(signum, frame)

                signal.signal(signal.SIGINT, on_sigint)
        try:
            yield
        finally:
            if installed:
                for signum in handled:
                    loop.remove_signal_handler(signum)
                signal.signal(signal.SIGINT, previous)

    def _noted(self, signum: int) -> None:
        if self.signal is not None and self._hurry is not None:
            self._hurry()
        self.signal = self.signal or signum

    def _cancel(self, signum: int, task: asyncio.Task[int]) -> None:
        self._noted(signum)
        task.cancel()

    def run(self, main: Callable[[], Coroutine[Any, Any, int]]) -> int:
        """Run `main()` in a loop of its own and return its exit code, or 130/143 when Ctrl-C or
        SIGTERM ended it before it could return one."""
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
                return runner.run(self._watched(main))
        except KeyboardInterrupt:  # a second Ctrl-C; asyncio.Runner has let the run's clean-up finish
            return 128 + signal.SIGINT
        except asyncio.CancelledError:
            if self.signal is None:
                raise
            return 128 + self.signal

    async def _watched(self, main: Callable[[], Coroutine[Any, Any, int]]) -> int:
        task = asyncio.current_task()
        assert task is not None
        with self.watching(task):
            return await main()
