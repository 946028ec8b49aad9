"""A real terminal: `wtflow run` under a pseudo-terminal draws the live tree and ends cleanly."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import signal
import struct
import subprocess
import termios
import time
from pathlib import Path

from tests.cli.conftest import WTFLOW, WtfileWriter, cli_env
from tests.helpers import gone
from tests.procs import argv

SHOW_CURSOR, HIDE_CURSOR = b"\x1b[?25h", b"\x1b[?25l"

CI = """
@wtflow.workflow
def ci():
    return wtflow.Node(name="ci", children=[
        wtflow.Node(name="checks", parallel=True, children=[
            wtflow.Node(name="lint", executable=wtflow.Command("echo lint ok")),
            wtflow.Node(name="unit", executable=wtflow.Command("echo 'AssertionError: boom' >&2; exit 5")),
        ]),
        wtflow.Node(name="build", executable=wtflow.Command("echo built")),
    ])
"""


def _run_in_terminal(
    tmp_path: Path, *args: str, rows: int = 40, interrupt_when: bytes | None = None, **env: str
) -> tuple[int, bytes]:
    """Run wtflow with a pseudo-terminal as stdin, stdout and stderr; returns (code, everything shown)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, 120, 0, 0))
    proc = subprocess.Popen(
        [*WTFLOW, *args],
        cwd=tmp_path,
        env=cli_env(tmp_path, TERM="xterm-256color", **env),
        stdin=follower,
        stdout=follower,
        stderr=follower,
        start_new_session=True,  # its own session, so the terminal is its controlling one
    )
    os.close(follower)
    shown = b""
    deadline = time.monotonic() + 60  # a hang guard
    while time.monotonic() < deadline:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: every writer closed the terminal
            break
        if not chunk:
            break
        shown += chunk
        if interrupt_when is not None and interrupt_when in shown:
            os.killpg(proc.pid, signal.SIGINT)  # as the terminal does on Ctrl-C
            interrupt_when = None
    os.close(leader)
    return proc.wait(timeout=30), shown


def test_live_view_draws_the_tree_and_gives_the_terminal_back(wtfile: WtfileWriter, tmp_path: Path) -> None:
    wtfile(CI)
    code, shown = _run_in_terminal(tmp_path, "run")
    assert code == 1, shown
    assert shown.startswith(HIDE_CURSOR), shown[:200]
    final = shown[shown.rindex(b"\x1b[2K") :]  # the last frame: rich clears the old lines first
    text = final.decode()
    for line in ("✗ ci", "├── ✗ checks", "│   ├── ✓ lint", "│   └── ✗ unit", "└── - build"):
        assert line in _plain(text), text
    assert "exit 5" in text
    assert SHOW_CURSOR in final
    after = shown[shown.rindex(SHOW_CURSOR) :].decode()
    assert "FAILED ci/checks/unit (exit 5); log: " in _plain(after)
    assert "    AssertionError: boom" in after
    assert "wtflow: ci " in after
    assert "[ci/checks/lint]" not in shown.decode()  # no plain-console lines mixed into the view


def test_live_view_shows_running_nodes_with_their_last_line(wtfile: WtfileWriter, tmp_path: Path) -> None:
    wtfile("""
    @wtflow.workflow
    def slow():
        return wtflow.Node(name="slow", executable=wtflow.Command("echo downloading 42%; sleep 60"))
    """)
    code, shown = _run_in_terminal(tmp_path, "run", interrupt_when=b"downloading 42%")
    assert code == 130
    frames = shown.decode()
    assert "▶ slow" in _plain(frames)
    assert SHOW_CURSOR in shown
    assert "wtflow: slow interrupted in" in _plain(frames[frames.rindex("\x1b[?25h") :])


def test_a_group_shows_as_running_while_a_node_below_it_runs(wtfile: WtfileWriter, tmp_path: Path) -> None:
    wtfile("""
    @wtflow.workflow
    def slow():
        return wtflow.Node(name="ci", children=[
            wtflow.Node(name="fetch", executable=wtflow.Command("echo downloading 42%; sleep 60")),
        ])
    """)
    code, shown = _run_in_terminal(tmp_path, "run", interrupt_when=b"downloading 42%")
    assert code == 130
    frame = _plain(shown.decode().split("downloading 42%")[-2])  # the first frame showing the line
    assert "▶ ci" in frame, frame
    assert "└── ▶ fetch" in frame, frame


def test_an_allowed_failure_has_its_own_mark_in_the_live_view(wtfile: WtfileWriter, tmp_path: Path) -> None:
    wtfile("""
    @wtflow.workflow
    def ci():
        return wtflow.Node(name="ci", children=[
            wtflow.Node(name="docs", executable=wtflow.Command("exit 3"), allow_failure=True),
            wtflow.Node(name="build", executable=wtflow.Command("true")),
        ])
    """)
    code, shown = _run_in_terminal(tmp_path, "run")
    assert code == 0
    final = _plain(shown[shown.rindex(b"\x1b[2K") :].decode())
    assert "├── ! docs" in final, final
    assert "failed (allowed)" in final
    assert "✗" not in final
    after = _plain(shown[shown.rindex(SHOW_CURSOR) :].decode())
    assert "FAILED (allowed) ci/docs (exit 3)" in after
    assert ": 1 succeeded, 1 failed (allowed); output in " in after


def test_a_run_in_a_pipe_never_imports_rich(wtfile: WtfileWriter, tmp_path: Path) -> None:
    """The live view's library is for terminals only; a PyFunc is a fork of the orchestrator, so
    it sees what the orchestrator had imported."""
    wtfile("""
    def report():
        print("rich imported:", any(name.split(".")[0] == "rich" for name in sys.modules))

    @wtflow.workflow
    def ci():
        return wtflow.Node(name="probe", executable=wtflow.PyFunc(report))
    """)
    proc = subprocess.run(
        [*WTFLOW, "run"], cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "[probe] rich imported: False" in proc.stdout


def test_tall_trees_show_only_running_and_failed_nodes(wtfile: WtfileWriter, tmp_path: Path) -> None:
    wtfile("""
    @wtflow.workflow
    def wide():
        return wtflow.Node(name="wide", parallel=True, children=[
            wtflow.Node(name=f"n{i:02}", executable=wtflow.Command("exit 1" if i == 7 else "true"))
            for i in range(40)])
    """)
    code, shown = _run_in_terminal(tmp_path, "run", rows=10)
    assert code == 1
    final = _plain(shown[shown.rindex(b"\x1b[2K") :].decode())
    assert "✗ wide/n07" in final, final
    assert "n08" not in final


def test_plain_output_when_the_live_view_is_off(wtfile: WtfileWriter, tmp_path: Path) -> None:
    wtfile(CI)
    code, shown = _run_in_terminal(tmp_path, "run", "--console", "plain", NO_COLOR="1")
    assert code == 1
    assert "[ci/checks/lint] lint ok" in shown.decode()
    assert b"\x1b[" not in shown


def test_no_process_is_left_after_ctrl_c_in_a_terminal(wtfile: WtfileWriter, tmp_path: Path) -> None:
    wtfile("""
    @wtflow.workflow
    def slow():
        return wtflow.Node(name="slow", executable=wtflow.Command("sleep 60 & echo $$ $! > pids; echo started; wait"))
    """)
    code, _ = _run_in_terminal(tmp_path, "run", interrupt_when=b"started")
    assert code == 130
    assert all(gone(int(pid)) for pid in (tmp_path / "pids").read_text().split())


def _plain(text: str) -> str:
    """Without colour and cursor sequences."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def test_a_node_waiting_for_its_retry_shows_when_and_ends_cancelled_on_ctrl_c(
    wtfile: WtfileWriter, tmp_path: Path
) -> None:
    wtfile("""
    @wtflow.workflow
    def flaky():
        return wtflow.Node(name="ci", children=[
            wtflow.Node(name="fetch", executable=wtflow.Command("exit 4"), retries=1, retry_delay=60),
        ])
    """)
    code, shown = _run_in_terminal(tmp_path, "run", interrupt_when=b"retry in ")
    assert code == 130
    frames = _plain(shown.decode())
    waiting = re.search(r"↻ fetch .*exit 4  retry in (\d+)s", frames)
    assert waiting is not None, frames
    assert 40 <= int(waiting[1]) <= 72  # 60 s +-20 %, counting down
    final = _plain(shown[shown.rindex(b"\x1b[2K") :].decode())
    assert "└── ⊘ fetch" in final, final
    assert "retry" not in final
    after = _plain(shown[shown.rindex(SHOW_CURSOR) :].decode())
    assert ": 1 cancelled; output in " in after


def test_a_node_in_its_kill_grace_shows_stopping(wtfile: WtfileWriter, tmp_path: Path) -> None:
    """Regression test: a timed-out node that ignores SIGTERM looked `running` for its whole kill grace."""
    wtfile(f"""
    @wtflow.workflow
    def stuck():
        return wtflow.Node(name="ci", children=[
            wtflow.Node(name="hang", timeout=0.5,
                        executable=wtflow.Command([sys.executable, {str(argv("stubborn.py", "pids")[1])!r}, "pids"])),
        ])
    """)
    code, shown = _run_in_terminal(tmp_path, "run", WTFLOW_KILL_GRACE="60", interrupt_when=b"stopping")
    assert code == 130  # Ctrl-C during the grace ends it at once
    frames = _plain(shown.decode())
    assert "■ hang" in frames, frames
    final = _plain(shown[shown.rindex(b"\x1b[2K") :].decode())
    assert "stopping" not in final, final
    assert all(gone(int(pid)) for pid in (tmp_path / "pids").read_text().split())
