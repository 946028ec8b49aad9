"""What the CLI shows: a live tree on a terminal, and the summary at the end of every run.

console_for(mode)   the listener for a console mode: LiveConsole on a terminal for `live`,
                    else the line consoles of console.py (CI logs and pipes)
LiveConsole         a rich tree redrawn from the event loop: status, elapsed time and the
                    last line of output of each running node
RunReport           keeps each node's final status and log path; `summary()` is the text
                    printed to stderr at the end (failed nodes with their last lines)
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text
from rich.tree import Tree

from wtflow.console import PlainConsole, RawConsole
from wtflow.events import (
    Event,
    Listener,
    NodeFinished,
    NodeSpec,
    NodeStarted,
    OutputReceived,
    RunFinished,
    RunStarted,
)
from wtflow.status import Status

REFRESH_SECONDS = 0.25
_TAIL_BYTES = 4096
_TAIL_LINES = 5

_STYLE = {
    Status.PENDING: ("·", "dim"),
    Status.RUNNING: ("▶", "cyan"),
    Status.SUCCEEDED: ("✓", "green"),
    Status.FAILED: ("✗", "red"),
    Status.TIMED_OUT: ("⏱", "red"),
    Status.CANCELLED: ("⊘", "yellow"),
    Status.SKIPPED: ("-", "dim"),
    Status.CRASHED: ("✗", "red"),
}


def is_terminal(stream: IO[str]) -> bool:
    return stream.isatty() and os.environ.get("TERM") != "dumb"


def color_wanted(choice: str, stream: IO[str]) -> bool:
    """--color always|never|auto; auto means a terminal and no NO_COLOR (https://no-color.org)."""
    if choice != "auto":
        return choice == "always"
    return not os.environ.get("NO_COLOR") and is_terminal(stream)


def console_for(mode: str, *, color: str, verbose: bool) -> Listener | None:
    """The listener that shows a run in `mode`; None for quiet."""
    if mode == "raw":
        return RawConsole()
    if mode == "plain":
        return PlainConsole(verbose=verbose)
    if mode == "live":
        # None leaves it to rich, which honours NO_COLOR; --color always/never overrides it.
        no_color = {"never": True, "always": False}.get(color)
        rich_console = Console(file=sys.stdout, highlight=False, no_color=no_color)
        return LiveConsole(rich_console)
    return None


@dataclass
class _NodeView:
    spec: NodeSpec
    status: Status = Status.PENDING
    started_at: datetime | None = None
    ended_at: datetime | None = None
    exit_code: int | None = None
    attempt: int = 0
    last_line: str = ""


def _last_line(data: bytes) -> str:
    """The last non-blank line of a chunk, as a progress bar would show it (after its last \\r)."""
    for raw in reversed(data[-_TAIL_BYTES:].splitlines()):
        text = raw.decode(errors="replace").rsplit("\r", 1)[-1].strip()
        if text:
            return "".join(ch for ch in text if ch.isprintable())[:200]
    return ""


class LiveConsole:
    """A tree of the run's nodes, redrawn a few times a second.

    Redrawing runs on the engine's event loop (a timer), not in a thread of its own: PyFunc nodes
    fork this process, and a fork while another thread holds a lock is a known deadlock."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._nodes: dict[int, _NodeView] = {}
        self._live: Live | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._workflow = ""

    def handle(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._workflow = event.workflow
            self._nodes = {spec.index: _NodeView(spec) for spec in event.nodes}
            self._live = Live(
                get_renderable=self._render, console=self.console, auto_refresh=False,
                redirect_stdout=False, redirect_stderr=False, transient=False,
            )  # fmt: skip
            self._live.start(refresh=True)
            self._schedule()
        elif isinstance(event, NodeStarted):
            view = self._nodes[event.index]
            view.status, view.started_at, view.attempt = Status.RUNNING, event.started_at, event.attempt
            view.ended_at, view.exit_code = None, None
        elif isinstance(event, OutputReceived):
            line = _last_line(event.data)
            if line:
                self._nodes[event.index].last_line = line
        elif isinstance(event, NodeFinished):
            view = self._nodes[event.index]
            view.status = Status.RUNNING if event.will_retry else event.status
            view.ended_at, view.exit_code = event.ended_at, event.exit_code
            if event.started_at is not None:
                view.started_at = event.started_at
        elif isinstance(event, RunFinished):
            self.close()  # on the loop, where the timer lives

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # events fed from outside a loop (tests): redraw on close only
            return
        self._timer = loop.call_later(REFRESH_SECONDS, self._tick)

    def _tick(self) -> None:
        if self._live is not None:
            self._live.refresh()
            self._schedule()

    def close(self) -> None:
        """Draw the final state and give the terminal back (cursor shown); safe to call twice."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        live, self._live = self._live, None
        if live is not None:
            live.refresh()
            live.stop()

    # -- drawing -------------------------------------------------------------------------

    def _render(self) -> RenderableType:
        counts: dict[Status, int] = {}
        for view in self._nodes.values():
            if view.spec.kind is not None:
                counts[view.status] = counts.get(view.status, 0) + 1
        header = Text.assemble((f"{self._workflow} ", "bold"), _counts_text(counts))
        # A tree taller than the screen would scroll and smear: show what matters instead.
        if len(self._nodes) + 2 > self.console.size.height:
            shown = [v for v in self._nodes.values() if v.status is Status.RUNNING or v.status.is_failure]
            return Group(header, *(self._label(v, full_path=True) for v in shown if v.spec.kind))
        trees: dict[int, Tree] = {}
        root: Tree | None = None
        for index, view in self._nodes.items():
            tree = Tree(self._label(view, full_path=False))
            parent = view.spec.parent
            if parent is None:
                root = tree
            else:
                trees[parent].children.append(tree)
            trees[index] = tree
        return Group(header, root) if root is not None else header

    def _label(self, view: _NodeView, *, full_path: bool) -> Text:
        icon, style = _STYLE.get(view.status, ("?", ""))
        name = "/".join(view.spec.path) if full_path else view.spec.path[-1]
        text = Text.assemble((f"{icon} ", style), (name, "bold" if view.status is Status.RUNNING else ""))
        if view.started_at is not None:
            end = view.ended_at if view.status is not Status.RUNNING else datetime.now(UTC)
            text.append(f"  {((end or view.started_at) - view.started_at).total_seconds():.1f}s", "dim")
        if view.attempt > 1:
            text.append(f"  attempt {view.attempt}", "yellow")
        if view.status.is_failure and view.exit_code is not None:
            text.append(f"  exit {view.exit_code}", "red")
        elif view.status in (Status.SKIPPED, Status.CANCELLED, Status.TIMED_OUT) and view.spec.kind:
            text.append(f"  {view.status}", style)
        if view.status is Status.RUNNING and view.last_line:
            text.append(f"  {view.last_line}", "dim")
        text.no_wrap, text.overflow = True, "ellipsis"
        return text


def _counts_text(counts: dict[Status, int]) -> Text:
    text = Text()
    for status in Status:
        if counts.get(status):
            text.append(f" {counts[status]} {status}", _STYLE[status][1])
    return text


# -- the summary at the end -----------------------------------------------------------------


@dataclass
class _Outcome:
    spec: NodeSpec
    status: Status = Status.PENDING
    exit_code: int | None = None
    attempts: int = 0
    stdout: Path | None = None
    stderr: Path | None = None


_ANSI = {"red": "31", "green": "32", "yellow": "33", "dim": "2", "bold": "1"}


def _paint(text: str, style: str, color: bool) -> str:
    return f"\x1b[{_ANSI[style]}m{text}\x1b[0m" if color else text


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

    def close(self) -> None:
        pass

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
            lines.append(_paint(head, "yellow" if o.spec.allow_failure else "red", color))
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
        line = f"wtflow: {self.workflow} {_paint(verdict, style, color)} in {seconds:.1f}s: {counts}{where}"
        return "".join(f"{text}\n" for text in [*self.failures(color), line])
