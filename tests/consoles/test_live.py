"""What the live tree shows between a node's start and its end, fed the engine's events."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console

from wtflow.consoles.live import LiveConsole
from wtflow.events import NodeFinished, NodeSpec, NodeStarted, NodeStopping, RunFinished, RunStarted
from wtflow.status import Status

RUN = "0123456789abcdef"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SPECS = (
    NodeSpec(0, ("ci",), None, 0, None, None, False, False),
    NodeSpec(1, ("ci", "checks"), 0, 0, None, None, True, False),
    NodeSpec(2, ("ci", "checks", "lint"), 1, 0, "command", "ruff", False, False),
    NodeSpec(3, ("ci", "checks", "docs"), 1, 1, "command", "mkdocs", False, True),
    NodeSpec(4, ("ci", "build"), 0, 1, "command", "make", False, False),
)


def _view() -> tuple[LiveConsole, Console]:
    screen = Console(file=io.StringIO(), width=100, height=40, color_system=None)
    live = LiveConsole(console=Console(file=io.StringIO(), width=100, height=40, color_system=None))
    live.handle(RunStarted(RUN, "ci", T0, Path("/tmp/run"), SPECS, {}))
    return live, screen


def _shown(live: LiveConsole, screen: Console) -> str:
    with screen.capture() as capture:
        screen.print(live.frame())
    return capture.get()


def _started(index: int, attempt: int = 1) -> NodeStarted:
    path = SPECS[index].path
    return NodeStarted(RUN, index, path, attempt, T0, Path("/tmp/out"), Path("/tmp/err"), 1234)


def _finished(index: int, status: Status, code: int | None, **more: object) -> NodeFinished:
    return NodeFinished(RUN, index, SPECS[index].path, 1, status, code, T0, T0 + timedelta(seconds=1), **more)  # type: ignore[arg-type]


def test_a_group_runs_while_a_node_below_it_runs() -> None:
    live, screen = _view()
    live.handle(_started(2))
    shown = _shown(live, screen)
    assert "▶ ci" in shown, shown
    assert "├── ▶ checks" in shown, shown
    assert "│   ├── ▶ lint" in shown, shown
    assert "└── · build" in shown, shown


def test_a_node_waiting_for_its_next_attempt_says_when_it_comes() -> None:
    live, screen = _view()
    live.handle(_started(2))
    due = datetime.now(UTC) + timedelta(seconds=4.5)
    live.handle(_finished(2, Status.FAILED, 1, will_retry=True, retry_at=due))
    shown = _shown(live, screen)
    assert "↻ lint" in shown, shown
    assert "exit 1" in shown
    assert "retry in 5s" in shown, shown
    assert "▶ checks" in shown  # its group still runs


def test_a_node_in_its_kill_grace_shows_stopping() -> None:
    live, screen = _view()
    live.handle(_started(4))
    live.handle(NodeStopping(RUN, 4, SPECS[4].path, 1, "timed out", T0))
    shown = _shown(live, screen)
    assert "■ build" in shown, shown
    assert "stopping" in shown
    live.handle(_finished(4, Status.TIMED_OUT, -15))
    shown = _shown(live, screen)
    assert "⏱ build" in shown, shown
    assert "stopping" not in shown


def test_an_allowed_failure_has_a_mark_of_its_own_and_does_not_count_as_failed() -> None:
    live, screen = _view()
    live.handle(_started(3))
    live.handle(_finished(3, Status.FAILED, 2))
    shown = _shown(live, screen)
    assert "! docs" in shown, shown
    assert "failed (allowed)" in shown
    header = shown.splitlines()[0]
    assert header == "ci  2 pending 1 failed (allowed)", header
    assert "✗" not in shown


def test_nothing_is_left_running_or_waiting_once_the_run_has_ended() -> None:
    live, screen = _view()
    live.handle(_started(2))
    live.handle(_finished(2, Status.FAILED, 1, will_retry=True, retry_at=datetime.now(UTC)))
    live.handle(RunFinished(RUN, Status.CANCELLED, 130, T0, {}))
    shown = _shown(live, screen)
    assert "⊘ lint" in shown, shown
    assert "retry" not in shown
    assert "▶" not in shown


def test_a_reused_node_names_the_run_it_comes_from_instead_of_a_time() -> None:
    live, screen = _view()
    reused = NodeStarted(RUN, 4, SPECS[4].path, 1, T0, Path("/tmp/out"), Path("/tmp/err"), None,
                         reused_from="3f2a91c0aaaa")  # fmt: skip
    live.handle(reused)
    live.handle(_finished(4, Status.SUCCEEDED, 0))
    line = next(line for line in _shown(live, screen).splitlines() if "build" in line)
    assert "reused from 3f2a91c0" in line
    assert "1.0s" not in line
