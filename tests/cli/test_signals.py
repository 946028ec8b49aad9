"""Ctrl-C and SIGTERM to a running `wtflow run`: every process ends, the summary is printed."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import WTFLOW, WtfileWriter, cli_env
from tests.helpers import gone, wait_for

# Three parallel nodes, each a shell that left a grandchild behind; each writes both pids.
SLEEPERS = """
@wtflow.workflow
def slow():
    nodes = [wtflow.Node(name=f"n{i}", executable=wtflow.Command(
        f"echo $$ > room/n{i}.tmp; sleep 60 & echo $! >> room/n{i}.tmp; mv room/n{i}.tmp room/n{i}; wait"))
        for i in range(3)]
    return wtflow.Node(name="top", children=[
        wtflow.Node(name="group", parallel=True, children=nodes),
        wtflow.Node(name="after", executable=wtflow.Command("echo never")),
    ])
"""


def _start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    (tmp_path / "room").mkdir()
    proc = subprocess.Popen(
        [*WTFLOW, *args],
        cwd=tmp_path,
        env=cli_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _STARTED.append(proc)
    return proc


def _wait_for(room: Path, count: int) -> None:
    def ready() -> bool:
        return len([p for p in room.iterdir() if not p.name.endswith(".tmp")]) >= count

    wait_for(ready, f"{count} node(s) to start", timeout=90)  # a hang guard: the machine may be busy


_STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_run_left() -> Iterator[None]:
    """A test that fails half-way leaves no `wtflow` behind, nor its pipes open."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _pids(room: Path) -> list[int]:
    return [int(pid) for f in room.iterdir() for pid in f.read_text().split()]


@pytest.mark.parametrize(
    ("sig", "code", "word"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_signal_stops_every_process_and_prints_the_summary(
    wtfile: WtfileWriter, tmp_path: Path, sig: int, code: int, word: str
) -> None:
    wtfile(SLEEPERS)
    proc = _start(tmp_path, "run")
    _wait_for(tmp_path / "room", 3)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    ended = sorted(line.split(" in ")[0] for line in out.splitlines() if line.startswith("<=="))
    assert ended == [f"<== top/group/n{i} cancelled" for i in range(3)], out
    assert out.rstrip().endswith("cancelled (4 cancelled)"), (
        out
    )  # the four nodes that execute something; groups are not counted
    assert err.startswith(f"wtflow: slow {word} in "), err
    assert "never" not in out
    assert all(gone(pid) for pid in _pids(tmp_path / "room"))


def test_second_ctrl_c_ends_at_once_and_still_leaves_nothing(wtfile: WtfileWriter, tmp_path: Path) -> None:
    # The node and its grandchild ignore SIGTERM and the grace before SIGKILL is long: only a
    # second Ctrl-C ends the wait (the 30 s guard below is shorter than the 60 s grace). The
    # node's shell notes the SIGTERM of the first Ctrl-C, so the second comes after it.
    wtfile("""
    @wtflow.workflow
    def stubborn():
        return wtflow.Node(name="stubborn", executable=wtflow.Command(
            "trap 'touch room/terminated' TERM; (trap '' TERM; exec sleep 120) & "
            "echo $$ $! > room/pids.tmp; mv room/pids.tmp room/pids; "
            "while kill -0 $! 2>/dev/null; do wait $!; done"))
    """)
    proc = _start(tmp_path, "run", "--kill-grace", "60")
    _wait_for(tmp_path / "room", 1)
    proc.send_signal(signal.SIGINT)
    wait_for((tmp_path / "room" / "terminated").exists, "the first Ctrl-C to reach the node")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert all(gone(pid) for pid in _pids(tmp_path / "room"))


def test_ctrl_c_while_a_slow_wtfile_imports_is_an_interruption(wtfile: WtfileWriter, tmp_path: Path) -> None:
    wtfile("import pathlib, time\npathlib.Path('room/importing').touch()\ntime.sleep(60)\n")
    proc = _start(tmp_path, "list")
    _wait_for(tmp_path / "room", 1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert (proc.returncode, err) == (130, "wtflow: interrupted\n")
