"""An executor that runs nothing: each node path gets a scripted outcome (as httpx's
MockTransport answers requests), so that the engine's policy is tested without processes.

    executor = MemoryExecutor({"root/a": Script(exit_code=3), "root/b": [Script(exit_code=1), Script()]})

A list scripts successive attempts (the last one repeats); unnamed nodes succeed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from wtflow import dynamic
from wtflow.executors import ExecRequest, ExecResult, OnStopping, Sink, StartNotice
from wtflow.model import Node


@dataclass(frozen=True)
class Script:
    exit_code: int | None = 0
    signal: int | None = None
    error: str | None = None  # could not start (or, with lost=True, the worker was lost)
    lost: bool = False
    stdout: Sequence[bytes] = ()
    stderr: Sequence[bytes] = ()
    wait: asyncio.Event | None = None  # runs until this is set
    hang: bool = False  # runs until cancelled
    # What its PyFunc returned, passed on as a real one's process does (dynamic children).
    returns: Sequence[Node] = ()

    def result(self) -> ExecResult:
        if self.error is not None:
            return ExecResult(error=self.error, lost=self.lost)
        if self.signal is not None:
            return ExecResult(signal=self.signal)
        return ExecResult(exit_code=self.exit_code)


class MemoryExecutor:
    def __init__(
        self,
        scripts: Mapping[str, Script | Sequence[Script]] | None = None,
        *,
        capacity: int | None = None,
    ) -> None:
        self.scripts = dict(scripts or {})
        self._capacity = capacity
        self.requests: list[ExecRequest] = []
        self.cancelled: list[str] = []
        self.running = 0
        self.peak = 0
        self.closed = 0
        self.abandoned = 0
        self.hurried = 0

    @property
    def capacity(self) -> int | None:
        return self._capacity

    async def open(self) -> None:
        pass

    def script(self, request: ExecRequest) -> Script:
        scripted = self.scripts.get("/".join(request.attempt.path), Script())
        if isinstance(scripted, Script):
            return scripted
        return scripted[min(request.attempt.number, len(scripted)) - 1]

    async def run(
        self,
        request: ExecRequest,
        *,
        sinks: Mapping[str, Sink],
        on_start: Callable[[StartNotice], None],
        on_stopping: OnStopping | None = None,
    ) -> ExecResult:
        self.requests.append(request)
        script = self.script(request)
        if script.error is not None and not script.lost:
            return script.result()
        on_start(StartNotice("memory", None))
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            for chunk in script.stdout:
                await sinks["stdout"].write(chunk)
            for chunk in script.stderr:
                await sinks["stderr"].write(chunk)
            async with asyncio.timeout(request.timeout):
                if script.wait is not None:
                    await script.wait.wait()
                if script.hang:
                    await asyncio.Event().wait()
        except TimeoutError:
            if on_stopping is not None:
                on_stopping("timed out")
            return ExecResult(signal=15, timed_out=True)
        except asyncio.CancelledError:
            if on_stopping is not None:
                on_stopping("cancelled")
            self.cancelled.append("/".join(request.attempt.path))
            raise
        finally:
            self.running -= 1
        if script.returns and script.result().exit_code == 0:
            dynamic.save(script.returns, Path(request.env["WTFLOW_ARTIFACTS"]))
        return script.result()

    def hurry(self) -> None:
        self.hurried += 1

    def abandon(self) -> None:
        self.abandoned += 1

    async def aclose(self) -> None:
        self.closed += 1
