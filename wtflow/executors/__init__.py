"""How an executable becomes a process.

    Executor (protocol)
    └── LocalExecutor        asyncio + a process group per node on this machine

`run()` calls `request.prepare` (if any), starts the process, feeds each stdout/stderr chunk to
its sink as it arrives and returns the exit code (negative: killed by that signal). Cancelling
`run()` stops the whole process group (SIGTERM, grace, SIGKILL) before the CancelledError goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from wtflow.executables import Executable


class Sink(Protocol):
    """Where a stream's chunks go."""

    async def write(self, data: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class ExecRequest:
    """What to run and where: the full environment and working directory."""

    executable: Executable
    env: Mapping[str, str]
    cwd: Path | None
    token: str  # carried in the environment, to find processes that left the group
    # Called just before the process starts, where it starts (the loop or a worker thread): the
    # engine creates the node's output files here, so that both cost one hand-off, not two.
    prepare: Callable[[], None] | None = None


class Executor(Protocol):
    async def run(
        self, request: ExecRequest, *, sinks: Mapping[str, Sink], on_start: Callable[[int], None]
    ) -> int: ...
