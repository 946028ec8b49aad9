"""The one factory of a run's default listeners, and the fan-out's promises."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import wtflow.engine
from tests.helpers import Collect, config
from wtflow.consoles import PlainConsole, RawConsole, console_for
from wtflow.db.recorder import Recorder
from wtflow.listeners import Fanout, default_listeners
from wtflow.reports.journal import Journal


@pytest.mark.parametrize(
    ("mode", "kind"), [("raw", RawConsole), ("plain", PlainConsole), ("live", PlainConsole)]
)
def test_the_console_of_each_mode_off_a_terminal(mode: str, kind: type) -> None:
    # pytest's stdout is not a terminal: a live tree there would be noise, so plain lines it is.
    assert type(console_for(mode, color="auto", verbose=False)) is kind


def test_quiet_has_no_console(tmp_path: Path) -> None:
    assert console_for("quiet", color="auto", verbose=False) is None
    listeners = default_listeners(config(tmp_path, run__console="quiet"))
    assert [type(x) for x in listeners] == [Journal]
    listeners[0].close()


def test_a_database_brings_the_recorder_after_the_journal(tmp_path: Path) -> None:
    given = Collect()
    listeners = default_listeners(config(tmp_path, db__url=f"sqlite:///{tmp_path}/w.db"), console=given)
    try:
        assert [type(x) for x in listeners] == [Journal, Recorder, Collect]
    finally:
        for listener in listeners:
            listener.close()


def test_fanout_closes_each_listener_once_and_collects_their_problems() -> None:
    class Reports(Collect):
        closes = 0

        def close(self) -> list[str]:
            self.closes += 1
            return ["lost 3 events"]

    one, problems = Reports(), list[str]()
    fanout = Fanout([one], problems)
    while fanout.close_next():
        pass
    assert not fanout.close_next()
    assert (one.closes, problems) == (1, ["lost 3 events"])


def test_the_engine_imports_no_database_console_or_local_process_code() -> None:
    tree = ast.parse(Path(wtflow.engine.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    forbidden = ("wtflow.db", "wtflow.console", "wtflow.live", "wtflow.executors.local")
    assert not [m for m in imported if m.startswith(forbidden)]
