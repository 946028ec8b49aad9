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
    """Which signal interrupted a run: SIGTERM cancels the run's task (as asyncio.Runner does
    for Ctrl-C), and both are noted first, so the record says 130 or 143."""

    def __init__(self) -> None:
        self.signal: int | None = None

    @contextlib.contextmanager
    def watching(self, task: asyncio.Task[int]) -> Iterator[None]:
        self.signal = None
        loop, previous = asyncio.get_running_loop(), signal.getsignal(signal.SIGINT)
        installed = False
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not the main thread
            loop.add_signal_handler(signal.SIGTERM, self._cancel, signal.SIGTERM, task)
            installed = True
            if callable(previous):  # asyncio.Runner's own: it cancels the task; note why first

                def on_sigint(signum: int, frame: FrameType | None) -> None:
                    self.signal = self.signal or signum
                    previous(signum, frame)

                signal.signal(signal.SIGINT, on_sigint)
        try:
            yield
        finally:
            if installed:
                loop.remove_signal_handler(signal.SIGTERM)
                signal.signal(signal.SIGINT, previous)

    def _cancel(self, signum: int, task: asyncio.Task[int]) -> None:
        self.signal = signum
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
