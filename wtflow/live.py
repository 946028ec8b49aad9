"""What the CLI shows: a live tree on a terminal, and the summary at the end of every run.

LiveConsole         (live_tree.py) a rich tree redrawn from the event loop
RunReport           keeps each node's final status and log path; `summary()` is the text
                    printed to stderr at the end (failed nodes with their last lines)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from wtflow.events import (
    Event,
    NodeFinished,
    NodeSpec,
    NodeStarted,
    RunStarted,
)
from wtflow.status import Status
from wtflow.terminal import paint

_TAIL_BYTES = 4096
_TAIL_LINES = 5


# -- the summary at the end -----------------------------------------------------------------


@dataclass
class _Outcome:
    spec: NodeSpec
    status: Status = Status.PENDING
    exit_code: int | None = None
    attempts: int = 0
    stdout: Path | None = None
    stderr: Path | None = None


def tail_lines(path: Path | None, count: int = _TAIL_LINES) -> list[str]:
    """The last `count` non-blank lines of a log file (reading only its end)."""
    if path is None:
        return []
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - _TAIL_BYTES))
            data = f.read()
    except OSError:
        return []
    lines = [line.decode(errors="replace").rsplit("\r", 1)[-1].rstrip() for line in data.splitlines()]
    return [line for line in lines if line.strip()][-count:]


def _shown_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class RunReport:
    """Listens to a run and keeps what the end-of-run summary needs (nothing of the output)."""

    def __init__(self) -> None:
        self.workflow = ""
        self.run_dir: Path | None = None
        self.nodes: dict[int, _Outcome] = {}

    def handle(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.workflow, self.run_dir = event.workflow, event.run_dir
            self.nodes = {spec.index: _Outcome(spec) for spec in event.nodes}
        elif isinstance(event, NodeStarted):
            outcome = self.nodes[event.index]
            outcome.stdout, outcome.stderr, outcome.attempts = (
                event.stdout_path,
                event.stderr_path,
                event.attempt,
            )
        elif isinstance(event, NodeFinished):
            outcome = self.nodes[event.index]
            outcome.status, outcome.exit_code = event.status, event.exit_code

    wants_output = False

    def close(self) -> list[str]:
        return []

    def counts(self) -> dict[Status, int]:
        """Final statuses of the nodes that execute something (grouping nodes only echo them)."""
        counts: dict[Status, int] = {}
        for outcome in self.nodes.values():
            if outcome.spec.kind is not None:
                counts[outcome.status] = counts.get(outcome.status, 0) + 1
        return counts

    def failures(self, color: bool) -> list[str]:
        lines = []
        for o in self.nodes.values():
            if o.spec.kind is None or o.status not in (Status.FAILED, Status.TIMED_OUT):
                continue
            why = f"exit {o.exit_code}" if o.status is Status.FAILED else "timed out"
            tries = f" after {o.attempts} attempts" if o.attempts > 1 else ""
            allowed = " (allowed to fail)" if o.spec.allow_failure else ""
            log = f"; log: {_shown_path(o.stderr)}" if o.stderr is not None else ""
            head = f"{o.status.upper()} {'/'.join(o.spec.path)} ({why}{tries}){allowed}{log}"
            lines.append(paint(head, "yellow" if o.spec.allow_failure else "red", color))
            # Many tools (pytest, make) report on stdout: show it when stderr said nothing.
            tail = tail_lines(o.stderr) or tail_lines(o.stdout)
            lines.extend(f"    {line}" for line in tail)
        return lines

    def summary(self, code: int, seconds: float, *, color: bool) -> str:
        """The text for stderr: failed nodes with their last lines, then one summary line."""
        if not self.workflow:  # the run never started (e.g. the state folder was not writable)
            return ""
        verdict = {0: "succeeded", 1: "failed", 130: "interrupted", 143: "terminated"}.get(
            code, f"exit {code}"
        )
        style = "green" if code == 0 else "red" if code == 1 else "yellow"
        tally = self.counts()
        counts = ", ".join(f"{tally[s]} {s}" for s in Status if tally.get(s)) or "no steps"
        where = f"; output in {_shown_path(self.run_dir)}" if self.run_dir is not None else ""
        line = f"wtflow: {self.workflow} {paint(verdict, style, color)} in {seconds:.1f}s: {counts}{where}"
        return "".join(f"{text}\n" for text in [*self.failures(color), line])
