"""The end of every CLI run: the failed nodes with the last lines of their logs, why nodes were
skipped, then one line.

    RunReport.handle(event)    keeps each node's final status and log paths (never its output)
    RunReport.summary(...)     the text for stderr

A node allowed to fail (its own allow_failure or an ancestor's) that fails counts as
`failed (allowed)`: shown, in its own colour, and never as a failure of the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from wtflow.events import Event, NodeFinished, NodesAdded, NodeSpec, NodeStarted, RunStarted
from wtflow.status import Status
from wtflow.terminal import ALLOWED_SUFFIX, is_allowed_failure, paint, status_word

TAIL_BYTES = 4096
TAIL_LINES = 5
SKIPPED_NAMED = 5  # paths named per skip reason; the rest are counted


def allowed_to_fail(nodes: Iterable[NodeSpec]) -> set[int]:
    """Indexes of the nodes whose failure does not fail the run: allow_failure on them or above."""
    allowed: set[int] = set()
    for spec in nodes:  # parents come before their children
        if spec.allow_failure or (spec.parent is not None and spec.parent in allowed):
            allowed.add(spec.index)
    return allowed


def count_words(statuses: Iterable[tuple[Status, bool]]) -> str:
    """`2 succeeded, 1 failed (allowed)` in the order of Status, each allowed kind after its own."""
    tally: dict[str, int] = {}
    for status, allowed in statuses:
        word = status_word(status, allowed)
        tally[word] = tally.get(word, 0) + 1
    order = [word for status in Status for word in (status_word(status, False), status_word(status, True))]
    return ", ".join(f"{tally[word]} {word}" for word in dict.fromkeys(order) if tally.get(word))


@dataclass
class _Outcome:
    spec: NodeSpec
    allowed: bool
    status: Status = Status.PENDING
    exit_code: int | None = None
    attempts: int = 0
    stdout: Path | None = None
    stderr: Path | None = None
    reason: str | None = None  # why it was skipped


def tail_lines(path: Path | None, count: int = TAIL_LINES) -> list[str]:
    """The last `count` non-blank lines of a log file (reading only its end)."""
    if path is None:
        return []
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - TAIL_BYTES))
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
            allowed = allowed_to_fail(event.nodes)
            self.nodes = {spec.index: _Outcome(spec, spec.index in allowed) for spec in event.nodes}
        elif isinstance(event, NodesAdded):
            allowed = allowed_to_fail(event.nodes)  # resolved from their ancestors already
            self.nodes.update((spec.index, _Outcome(spec, spec.index in allowed)) for spec in event.nodes)
        elif isinstance(event, NodeStarted):
            outcome = self.nodes[event.index]
            outcome.stdout, outcome.stderr, outcome.attempts = (
                event.stdout_path,
                event.stderr_path,
                event.attempt,
            )
        elif isinstance(event, NodeFinished):
            outcome = self.nodes[event.index]
            outcome.status, outcome.exit_code, outcome.reason = event.status, event.exit_code, event.reason

    wants_output = False

    def close(self) -> list[str]:
        return []

    def counts(self) -> str:
        """Final statuses of the nodes that execute something (grouping nodes only echo them)."""
        return count_words((o.status, o.allowed) for o in self.nodes.values() if o.spec.kind is not None)

    def failures(self, color: bool) -> list[str]:
        lines = []
        for o in self.nodes.values():
            if o.status not in (Status.FAILED, Status.TIMED_OUT) or (o.spec.kind is None and not o.attempts):
                continue  # a group's failure is its children's, unless its own when= failed
            why = (
                "timed out"
                if o.status is Status.TIMED_OUT
                else "not run"
                if o.exit_code is None
                else f"exit {o.exit_code}"
            )
            tries = f" after {o.attempts} attempts" if o.attempts > 1 else ""
            allowed = is_allowed_failure(o.status, o.allowed)
            # Many tools (pytest, make) report on stdout: show it when stderr said nothing, and
            # name the file the lines come from.
            log, tail = o.stderr, tail_lines(o.stderr)
            if not tail and tail_lines(o.stdout):
                log, tail = o.stdout, tail_lines(o.stdout)
            where = f"; log: {_shown_path(log)}" if log is not None else ""
            kind = f"{o.status.upper()}{ALLOWED_SUFFIX if allowed else ''}"
            head = f"{kind} {'/'.join(o.spec.path)} ({why}{tries}){where}"
            lines.append(paint(head, "yellow" if allowed else "red", color))
            lines.extend(f"    {line}" for line in tail)
        return lines

    def skipped(self) -> list[str]:
        """One line per reason a node was skipped, naming the outermost nodes it skipped (a
        skipped group stands for its subtree): `skipped (condition false): ci/deploy`."""
        by_reason: dict[str, list[str]] = {}
        for o in self.nodes.values():
            if o.status is not Status.SKIPPED:
                continue
            reason = o.reason or "no reason recorded"
            parent = None if o.spec.parent is None else self.nodes.get(o.spec.parent)
            if parent is not None and parent.status is Status.SKIPPED and parent.reason == o.reason:
                continue
            by_reason.setdefault(reason, []).append("/".join(o.spec.path))
        lines = []
        for reason, paths in by_reason.items():
            more = len(paths) - SKIPPED_NAMED
            named = ", ".join(paths[:SKIPPED_NAMED]) + (f" and {more} more" if more > 0 else "")
            lines.append(f"skipped ({reason}): {named}")
        return lines

    def summary(self, code: int, seconds: float, *, color: bool) -> str:
        """The text for stderr: failed nodes with their last lines, then one summary line."""
        if not self.workflow:  # the run never started (e.g. the state folder was not writable)
            return ""
        verdict = {0: "succeeded", 1: "failed", 130: "interrupted", 143: "terminated"}.get(
            code, f"exit {code}"
        )
        style = "green" if code == 0 else "red" if code == 1 else "yellow"
        counts = self.counts() or "no steps"
        where = f"; output in {_shown_path(self.run_dir)}" if self.run_dir is not None else ""
        line = f"wtflow: {self.workflow} {paint(verdict, style, color)} in {seconds:.1f}s: {counts}{where}"
        return "".join(f"{text}\n" for text in [*self.failures(color), *self.skipped(), line])
