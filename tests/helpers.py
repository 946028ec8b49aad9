"""Small builders shared by the core tests."""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from wtflow import Config, Node, Workflow
from wtflow.events import Event

T = TypeVar("T")


def config(tmp_path: Path, **overrides: Any) -> Config:
    """Settings for a test: no database unless asked, artifacts under tmp_path, no console."""
    values: dict[str, Any] = {
        "db.url": "",
        "storage.state_dir": tmp_path / "state",
        "run.console": "quiet",
        "run.kill_grace": 0.5,
    }
    values.update({k.replace("__", "."): v for k, v in overrides.items()})
    return Config.load(environ={}, overrides=values)


def py(code: str) -> str:
    """A shell command running `code` with this interpreter."""
    return shlex.join([sys.executable, "-c", code])


def wf(*children: Node, parallel: bool = False, name: str = "wf") -> Workflow:
    return Workflow(name=name, root=Node(name="root", children=list(children), parallel=parallel))


class Collect:
    """A listener keeping every event."""

    wants_output = True

    def __init__(self) -> None:
        self.events: list[Event] = []

    def handle(self, event: Event) -> None:
        self.events.append(event)

    def close(self) -> list[str]:
        return []

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def gone(pid: int) -> bool:
    """The process has ended: absent, or a zombie left for a parent other than us."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    # A zombie that is not ours (its parent reaps it) is gone for our purposes.
    return stat.rsplit(")", 1)[1].split()[0] == "Z" and int(stat.rsplit(")", 1)[1].split()[1]) != os.getpid()


def wait_for(condition: Callable[[], T], what: str, timeout: float = 30) -> T:
    """Poll `condition` until it returns something true, and return that.

    The timeout is a hang guard, not a speed claim: past it the test fails naming `what`."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(0.01)
    return value
