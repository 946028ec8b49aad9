"""The raw console: the nodes' own bytes, stdout to stdout and stderr to stderr, nothing added.

What the Python API shows by default. Whole lines only, so nodes running at once never tear each
other's lines; written by a thread of its own (writer.py), so a stdout nobody reads does not
hold up the run.
"""

from __future__ import annotations

import sys
from typing import IO

from wtflow.consoles.lines import LineJoiner
from wtflow.consoles.writer import Target, Writer
from wtflow.events import Event, NodeFinished, NodeStarted, OutputReceived


class RawConsole:
    """The nodes' bytes as they are; `error` says why output stopped (e.g. a reader that left)."""

    def __init__(self, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> None:
        self._writer = Writer(type(self).__name__)
        self._targets = {
            "stdout": Target(stdout if stdout is not None else sys.stdout, self._writer),
            "stderr": Target(stderr if stderr is not None else sys.stderr, self._writer),
        }
        self._lines = LineJoiner()

    @property
    def error(self) -> str | None:
        return self._writer.error

    wants_output = True

    def handle(self, event: Event) -> None:
        if isinstance(event, OutputReceived):
            lines = self._lines.feed(event)
            if lines is not None:
                self._targets[event.stream].write_lines(lines)
        elif isinstance(event, NodeStarted):
            self._lines.started(event)
        elif isinstance(event, NodeFinished):
            for lines in self._lines.flush(event.index):
                self._targets[lines.stream].write_lines(lines)

    def close(self) -> list[str]:
        """Return once the readers have taken every byte (or went away)."""
        self._writer.close()
        return [] if self.error is None else [self.error]
