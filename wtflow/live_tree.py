"""The live view on a terminal: a rich tree redrawn from the event loop with each node's status,
elapsed time and the last line of output of what is running. Imported only when it is shown."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text
from rich.tree import Tree

from wtflow.events import Event, NodeFinished, NodeSpec, NodeStarted, OutputReceived, RunFinished, RunStarted
from wtflow.live import _TAIL_BYTES
from wtflow.status import Status
from wtflow.terminal import STATUS_STYLE

REFRESH_SECONDS = 0.25


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

    wants_output = True

    def close(self) -> list[str]:
        """Draw the final state and give the terminal back (cursor shown); safe to call twice."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        live, self._live = self._live, None
        if live is not None:
            live.refresh()
            live.stop()
        return []

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
        icon, style = STATUS_STYLE.get(view.status, ("?", ""))
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
            text.append(f" {counts[status]} {status}", STATUS_STYLE[status][1])
    return text
