"""The shared part of the CI logs (GitHub Actions, GitLab): each attempt's output printed in one
block when it ends, read back from its artifact files, so nodes running at once never interleave.

Why at the end and from the files: holding a parallel node's bytes in memory until it ends is
unbounded, and streaming the one node that happens to run alone would need to know, when it
starts, that no sibling will start before it ends. The files are already written as output
arrives (the artifacts), so a block costs one read of them, on this listener's own thread: the
event loop never waits on the CI runner's pipe. What this costs is latency: a long node shows
its output when it ends (the live view of a running node is `wtflow logs --follow`).
Measured on a 500-node fan-out, three lines a node, three runs each on 2 shared cores: 1.5 s
with `--ci github` against 1.4-1.9 s with the plain console, and all 500 groups whole.

In CI mode this listener takes the console's place for node output (`replaces_console`):
`run.console = quiet` keeps node output out of the log (annotations and the summary remain),
any other console mode is replaced by the blocks.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import IO

from wtflow.events import Event, NodeFinished, NodeStarted, RunFinished, RunStarted
from wtflow.reports.outcomes import Outcomes
from wtflow.reports.output import Masker, Worker, interleaved, last_line


class CiLog(Worker):
    wants_output = False  # the bytes are read back from the artifact files
    replaces_console = True

    def __init__(
        self, out: IO[bytes] | None = None, *, secrets: Iterable[str] = (), show_output: bool = True
    ) -> None:
        super().__init__(type(self).__name__)
        self._out = out
        self.mask = Masker(secrets)
        self.show_output = show_output
        self.outcomes = Outcomes()
        self._attempts: dict[int, NodeStarted] = {}

    def emit(self, data: bytes) -> None:
        if self._out is not None:
            self._out.write(data)
            return
        buffer = getattr(sys.stdout, "buffer", None)
        if buffer is not None:
            buffer.write(data)
        else:  # a stdout replaced by a text-only stream (a notebook, a test's StringIO)
            sys.stdout.write(data.decode(errors="replace"))

    def flush(self) -> None:
        (self._out or getattr(sys.stdout, "buffer", None) or sys.stdout).flush()

    def handle(self, event: Event) -> None:
        self.put(event)

    def close(self) -> list[str]:
        self.stop()
        return [] if self.error is None else [str(self.error)]

    def process(self, event: Event) -> None:
        self.outcomes.feed(event)
        if isinstance(event, RunStarted):
            self.run_started(event)
        elif isinstance(event, NodeStarted):
            self._attempts[event.index] = event
        elif isinstance(event, NodeFinished):
            started = self._attempts.pop(event.index, None)
            if started is not None and started.attempt == event.attempt:
                self.attempt_finished(started, event)
        elif isinstance(event, RunFinished):
            self.run_finished(event)
        self.flush()

    def write(self, text: str) -> None:
        self.emit(text.encode())

    def write_output(self, started: NodeStarted, finished: NodeFinished) -> None:
        """The attempt's stdout and stderr in the order written, secrets masked, ending in a newline."""
        last = b"\n"
        for data in interleaved(started.stdout_path, started.stderr_path, finished.output_order):
            data = self.mask.data(data)
            self.emit(data)
            last = data[-1:]
        if last != b"\n":
            self.emit(b"\n")

    def last_error_line(self, started: NodeStarted) -> str:
        return self.mask.text(last_line(started.stderr_path))

    # -- what each CI shows -----------------------------------------------------------------

    def run_started(self, event: RunStarted) -> None:
        pass

    def attempt_finished(self, started: NodeStarted, finished: NodeFinished) -> None:
        raise NotImplementedError

    def run_finished(self, event: RunFinished) -> None:
        pass
