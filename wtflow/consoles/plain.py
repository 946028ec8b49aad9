"""The plain console: `[node/path] line` prefixes plus start and end lines, for CI logs and pipes.

    === run 1a2b3c4d of 'ci': output in .wtflow/artifacts/ci/...
    ==> ci/build started
    [ci/build] compiling
    [ci/build] ! a warning on stderr
    <== ci/build succeeded in 0.52s
    ==> ci/test stopping (timed out)
    <== ci/test timed_out (exit -15) in 30.01s
    === run 1a2b3c4d succeeded (1 succeeded)

Whole lines only, so lines of nodes running at once are never torn apart; written by a thread
of its own (writer.py), so a pipe nobody reads does not hold up the run.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import IO

from wtflow.consoles.lines import LineJoiner, Lines
from wtflow.consoles.summary import allowed_to_fail, count_words
from wtflow.consoles.writer import Target, Writer
from wtflow.events import (
    Event,
    NodeFinished,
    NodeStarted,
    NodeStopping,
    OutputReceived,
    RunFinished,
    RunStarted,
)
from wtflow.status import Status
from wtflow.terminal import status_word


class PlainConsole:
    """Prefixed lines, and a line when each node starts and ends; `error` says why output stopped."""

    def __init__(self, out: IO[str] | None = None, *, verbose: bool = False) -> None:
        self._writer = Writer(type(self).__name__)
        self._out = Target(out if out is not None else sys.stdout, self._writer)
        self._lines = LineJoiner()
        self._outcome: dict[int, Status] = {}
        self._allowed: set[int] = set()
        self._reused: dict[int, str] = {}  # node index: the run (short id) whose result it reuses
        self.verbose = verbose

    @property
    def error(self) -> str | None:
        return self._writer.error

    def _emit(self, path: tuple[str, ...], lines: Lines) -> None:
        prefix = f"[{'/'.join(path)}]{' !' if lines.stream == 'stderr' else ''} ".encode()
        self._out.write_lines(lines, prefix)

    wants_output = True

    def handle(self, event: Event) -> None:
        if isinstance(event, OutputReceived):
            lines = self._lines.feed(event)
            if lines is not None:
                self._emit(event.path, lines)
        elif isinstance(event, NodeStarted):
            self._lines.started(event)
            if event.reused_from is not None:  # --resume: nothing runs; the line that ends it says so
                self._reused[event.index] = event.reused_from[:8]
                return
            attempt = f" (attempt {event.attempt})" if event.attempt > 1 else ""
            self._out.write_text(f"==> {'/'.join(event.path)} started{attempt}\n")
        elif isinstance(event, NodeFinished):
            self._finished(event)
        elif isinstance(event, NodeStopping):  # the kill grace may take a while: say why it goes quiet
            self._out.write_text(f"==> {'/'.join(event.path)} stopping ({event.reason})\n")
        elif isinstance(event, RunStarted):
            # Counted like the summary and `wtflow runs`: nodes that execute something, not groups.
            self._outcome = {spec.index: Status.PENDING for spec in event.nodes if spec.kind is not None}
            self._allowed = allowed_to_fail(event.nodes)
            self._out.write_text(
                f"=== run {event.run_id[:8]} of {event.workflow!r}: output in {event.run_dir}\n"
            )
        elif isinstance(event, RunFinished):
            counts = count_words((status, i in self._allowed) for i, status in self._outcome.items())
            self._out.write_text(f"=== run {event.run_id[:8]} {event.status} ({counts})\n")

    def _finished(self, event: NodeFinished) -> None:
        if event.index in self._outcome:
            self._outcome[event.index] = event.status
        for lines in self._lines.flush(event.index):
            self._emit(event.path, lines)
        if event.attempt == 0 and not self.verbose and event.status != Status.SKIPPED:
            return  # grouping nodes: their children already said it
        took = ""
        if event.index in self._reused:
            took = f", reused from {self._reused[event.index]}"
        elif event.started_at is not None:
            took = f" in {(event.ended_at - event.started_at).total_seconds():.2f}s"
        code = f" (exit {event.exit_code})" if event.exit_code not in (None, 0) else ""
        retry = ", will retry" if event.will_retry else ""
        if event.will_retry and event.retry_at is not None:
            wait = max(0.0, (event.retry_at - datetime.now(UTC)).total_seconds())
            retry = f", will retry in {wait:.1f}s"
        word = status_word(event.status, event.index in self._allowed and not event.will_retry)
        why = f" ({event.reason})" if event.reason else ""
        self._out.write_text(f"<== {'/'.join(event.path)} {word}{why}{code}{took}{retry}\n")

    def close(self) -> list[str]:
        """Return once the reader has taken every line (or went away)."""
        self._writer.close()
        return [] if self.error is None else [self.error]
