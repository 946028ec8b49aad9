"""The live view on a terminal: a rich tree of the run's nodes, redrawn from the event loop.

Each node shows its status, elapsed time and, while it runs, the last line it printed; a group
runs while any node below it runs; a node waiting for its next attempt shows `retry in Ns`, one
being stopped (SIGTERM sent, within its kill grace) `stopping`, an allowed failure its own mark.

Imported only when the view is shown: nothing else imports rich, so `wtflow run` in a pipe
never pays for it. Redrawing runs on the engine's event loop (a timer), not in a thread of its
own: PyFunc nodes fork this process, and a fork while another thread holds rich's locks is a
deadlock risk. rich draws each frame into a queue of the console's Writer (writer.py), whose
thread writes it to the terminal; while a frame is still being written (a terminal stopped by
Ctrl-S) no new one is drawn, so the loop never waits and at most one frame waits in memory.
"""

from __future__ import annotations

import asyncio
import io
import math
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, cast

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text
from rich.tree import Tree

from wtflow.consoles.summary import TAIL_BYTES, allowed_to_fail
from wtflow.consoles.writer import Target, Writer
from wtflow.events import (
    Event,
    NodeFinished,
    NodeSpec,
    NodeStarted,
    NodeStopping,
    OutputReceived,
    RunFinished,
    RunStarted,
)
from wtflow.status import Status
from wtflow.terminal import (
    RETRY_STYLE,
    STOPPING_STYLE,
    is_allowed_failure,
    status_style,
    status_word,
)

REFRESH_SECONDS = 0.25


@dataclass
class _NodeView:
    spec: NodeSpec
    allowed: bool
    status: Status = Status.PENDING
    started_at: datetime | None = None
    ended_at: datetime | None = None
    exit_code: int | None = None
    attempt: int = 0
    last_line: str = ""
    retry_at: datetime | None = None  # waiting for the next attempt
    retrying: bool = False
    stopping: bool = False
    reused_from: str | None = None  # --resume: the run whose result stands, nothing ran
    active: bool = False  # set while drawing: it, or a node below it, is running


def _last_line(data: bytes) -> str:
    """The last non-blank line of a chunk, as a progress bar would show it (after its last \\r)."""
    for raw in reversed(data[-TAIL_BYTES:].splitlines()):
        text = raw.decode(errors="replace").rsplit("\r", 1)[-1].strip()
        if text:
            return "".join(ch for ch in text if ch.isprintable())[:200]
    return ""


class _QueuedFile(io.TextIOBase):
    """What rich writes to: frames go to the Writer's thread; size and tty-ness are the terminal's."""

    def __init__(self, target: Target) -> None:
        self._target = target

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._target.encoding

    def write(self, text: str) -> int:
        self._target.write_text(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return self._target.stream.isatty()

    def fileno(self) -> int:
        return self._target.stream.fileno()


class LiveConsole:
    """A tree of the run's nodes, redrawn a few times a second; `error` says why drawing stopped."""

    def __init__(
        self, out: IO[str] | None = None, *, no_color: bool | None = None, console: Console | None = None
    ) -> None:
        """Draws on `out` (default stdout) through a writer thread, or straight on `console`."""
        self._writer: Writer | None = None
        if console is None:
            self._writer = Writer(type(self).__name__)
            target = Target(out if out is not None else sys.stdout, self._writer)
            # no_color=None leaves it to rich, which honours NO_COLOR.
            console = Console(file=cast(IO[str], _QueuedFile(target)), highlight=False, no_color=no_color)
        self.console = console
        self._nodes: dict[int, _NodeView] = {}
        self._live: Live | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._workflow = ""

    @property
    def error(self) -> str | None:
        return None if self._writer is None else self._writer.error

    wants_output = True

    def handle(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._workflow = event.workflow
            allowed = allowed_to_fail(event.nodes)
            self._nodes = {spec.index: _NodeView(spec, spec.index in allowed) for spec in event.nodes}
            self._live = Live(
                get_renderable=self.frame, console=self.console, auto_refresh=False,
                redirect_stdout=False, redirect_stderr=False, transient=False,
            )  # fmt: skip
            self._live.start(refresh=True)
            self._schedule()
        elif isinstance(event, NodeStarted):
            view = self._nodes[event.index]
            view.status, view.started_at, view.attempt = Status.RUNNING, event.started_at, event.attempt
            view.ended_at, view.exit_code, view.retrying, view.retry_at = None, None, False, None
            view.stopping, view.reused_from = False, event.reused_from
            self._group_started(view, event.started_at)
        elif isinstance(event, OutputReceived):
            line = _last_line(event.data)
            if line:
                self._nodes[event.index].last_line = line
        elif isinstance(event, NodeStopping):
            self._nodes[event.index].stopping = True
        elif isinstance(event, NodeFinished):
            self._finished(self._nodes[event.index], event)
        elif isinstance(event, RunFinished):
            for view in self._nodes.values():  # whatever was still on its way when the run ended
                if view.status is Status.RUNNING or view.stopping:
                    view.status, view.retrying, view.stopping = Status.CANCELLED, False, False
            self._stop_drawing()  # on the loop, where the timer lives; close() waits for the terminal

    def _finished(self, view: _NodeView, event: NodeFinished) -> None:
        view.stopping = False
        view.retrying, view.retry_at = event.will_retry, event.retry_at
        view.status = Status.RUNNING if event.will_retry else event.status
        view.ended_at, view.exit_code = event.ended_at, event.exit_code
        if event.started_at is not None:
            view.started_at = event.started_at

    def _group_started(self, view: _NodeView, at: datetime) -> None:
        # A group's time runs from the start of the first node below it.
        parent = view.spec.parent
        while parent is not None:
            group = self._nodes[parent]
            if group.started_at is None and group.spec.kind is None:
                group.started_at = at
            parent = group.spec.parent

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # events fed from outside a loop (tests): redraw on close only
            return
        self._timer = loop.call_later(REFRESH_SECONDS, self._tick)

    def _tick(self) -> None:
        if self._live is not None:
            if self._writer is None or self._writer.idle:  # else the terminal is behind: skip a frame
                self._live.refresh()
            self._schedule()

    def close(self) -> list[str]:
        """Draw the final state, give the terminal back (cursor shown) and wait until it is written;
        safe to call again."""
        self._stop_drawing()
        if self._writer is not None:
            self._writer.close()
        return [] if self.error is None else [self.error]

    def _stop_drawing(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        live, self._live = self._live, None
        if live is not None:
            live.refresh()
            live.stop()

    # -- drawing -------------------------------------------------------------------------

    def frame(self) -> RenderableType:
        """What the next redraw shows."""
        views = list(self._nodes.values())
        for view in views:
            view.active = view.status is Status.RUNNING
        for view in reversed(views):  # children come after their parents
            parent = view.spec.parent
            if view.active and parent is not None:
                self._nodes[parent].active = True
        counts = _counts_text(views)
        header = Text.assemble((f"{self._workflow} ", "bold"), counts)
        # A tree taller than the screen would scroll and smear: show what matters instead.
        if len(self._nodes) + 2 > self.console.size.height:
            shown = [v for v in views if v.spec.kind and (v.active or v.status.is_failure)]
            return Group(header, *(self._label(v, full_path=True) for v in shown))
        trees: dict[int, Tree] = {}
        root: Tree | None = None
        for view in views:
            tree = Tree(self._label(view, full_path=False))
            parent = view.spec.parent
            if parent is None:
                root = tree
            else:
                trees[parent].children.append(tree)
            trees[view.spec.index] = tree
        return Group(header, root) if root is not None else header

    def _label(self, view: _NodeView, *, full_path: bool) -> Text:
        running = view.status is Status.RUNNING or (view.active and not view.status.is_final)
        shown = Status.RUNNING if running else view.status
        icon, style = status_style(shown, view.allowed)
        if view.stopping:
            icon, style = STOPPING_STYLE
        elif view.retrying:
            icon, style = RETRY_STYLE
        name = "/".join(view.spec.path) if full_path else view.spec.path[-1]
        text = Text.assemble((f"{icon} ", style), (name, "bold" if running else ""))
        now = datetime.now(UTC)
        if view.reused_from is not None:
            text.append(f"  reused from {view.reused_from[:8]}", "dim")
        elif view.started_at is not None:
            end = view.ended_at if not running or view.retrying else now
            text.append(f"  {((end or view.started_at) - view.started_at).total_seconds():.1f}s", "dim")
        if view.attempt > 1:
            text.append(f"  attempt {view.attempt}", "yellow")
        allowed = is_allowed_failure(shown, view.allowed)
        if (view.status.is_failure or view.retrying) and view.exit_code is not None:
            text.append(f"  exit {view.exit_code}", style if view.retrying or allowed else "red")
        if view.spec.kind and (allowed or shown in (Status.SKIPPED, Status.CANCELLED, Status.TIMED_OUT)):
            text.append(f"  {status_word(shown, view.allowed)}", style)
        if view.stopping:
            text.append("  stopping", style)
        elif view.retrying:
            due = (
                ""
                if view.retry_at is None
                else f" in {max(0, math.ceil((view.retry_at - now).total_seconds()))}s"
            )
            text.append(f"  retry{due}", style)
        elif running and view.last_line:
            text.append(f"  {view.last_line}", "dim")
        text.no_wrap, text.overflow = True, "ellipsis"
        return text


def _counts_text(views: list[_NodeView]) -> Text:
    tally: dict[tuple[Status, bool], int] = {}
    for view in views:
        if view.spec.kind is not None:
            allowed = is_allowed_failure(view.status, view.allowed)
            tally[view.status, allowed] = tally.get((view.status, allowed), 0) + 1
    text = Text()
    for status in Status:
        for allowed in (False, True):
            if tally.get((status, allowed)):
                style = status_style(status, allowed)[1]
                text.append(f" {tally[status, allowed]} {status_word(status, allowed)}", style)
    return text
