"""Ctrl-C and SIGTERM to a script running Engine(wf).run(): everything stops, 130/143 comes back."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import gone, wait_for

SCRIPT = """
import sys, wtflow
room = sys.argv[1]
nodes = [wtflow.Node(name=f"n{i}", executable=wtflow.Command(f"echo $$ > {room}/n{i}; sleep 60 & echo $! > {room}/g{i}; wait"))
         for i in range(3)]
root = wtflow.Node(name="root", parallel=True, children=nodes)
after = wtflow.Node(name="after", executable=wtflow.Command("echo never"))
engine = wtflow.Engine(wtflow.Workflow(name="interrupt", root=wtflow.Node(name="top", children=[root, after])))
code = engine.run()
print(code, *[n.status for n in nodes], after.status, file=sys.stderr)
raise SystemExit(code)
"""


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_every_process_group_and_returns_128_plus_signal(
    tmp_path: Path, sig: int, code: int
) -> None:
    room = tmp_path / "room"
    room.mkdir()
    db = tmp_path / "w.db"
    env = {**os.environ, "WTFLOW_DB_URL": f"sqlite:///{db}", "WTFLOW_CONSOLE": "quiet"}
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(room)], cwd=tmp_path, env=env, stderr=subprocess.PIPE
    )
    wait_for(lambda: len([p for p in room.iterdir() if p.read_text().strip()]) == 6, "3 nodes to start")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code
    assert err.decode().split() == [str(code), "cancelled", "cancelled", "cancelled", "cancelled"]
    for pid_file in room.iterdir():
        assert gone(int(pid_file.read_text())), pid_file.name
    # The record keeps the exit code wtflow returned, and no node is left running.
    with sqlite3.connect(db) as conn:
        assert conn.execute("select status, exit_code from runs").fetchall() == [("cancelled", code)]
        assert conn.execute(
            "select count(*) from nodes where status in ('running', 'pending')"
        ).fetchone() == (0,)
        assert conn.execute("select count(*) from attempts where status = 'running'").fetchone() == (0,)


STUBBORN = """
import sys, wtflow
room = sys.argv[1]
node = (
    "import pathlib, signal, sys, time\\n"
    "room = pathlib.Path(sys.argv[1])\\n"
    "signal.signal(signal.SIGTERM, lambda *_: (room / 'termed').touch())\\n"
    "(room / 'pid').write_text(str(__import__('os').getpid()))\\n"
    "while True: time.sleep(1)\\n"
)
stubborn = wtflow.Node(name="stubborn", executable=wtflow.Command([sys.executable, "-c", node, room]))
engine = wtflow.Engine(wtflow.Workflow(name="stubborn", root=wtflow.Node(name="top", children=[stubborn])))
raise SystemExit(engine.run())
"""


def test_a_second_ctrl_c_still_completes_the_record(tmp_path: Path) -> None:
    """The node ignores SIGTERM and the grace is long: only the second Ctrl-C ends the run."""
    room = tmp_path / "room"
    room.mkdir()
    db = tmp_path / "w.db"
    env = {
        **os.environ,
        "WTFLOW_DB_URL": f"sqlite:///{db}",
        "WTFLOW_CONSOLE": "quiet",
        "WTFLOW_KILL_GRACE": "60",
    }
    proc = subprocess.Popen([sys.executable, "-c", STUBBORN, str(room)], cwd=tmp_path, env=env)
    wait_for(lambda: (room / "pid").exists() and (room / "pid").stat().st_size, "the pid file")
    proc.send_signal(signal.SIGINT)
    wait_for((room / "termed").exists, "the termed file")  # the first Ctrl-C reached the graceful stop
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    assert gone(int((room / "pid").read_text()))
    with sqlite3.connect(db) as conn:
        assert conn.execute("select status, exit_code from runs").fetchall() == [("cancelled", 130)]
        assert conn.execute("select status from nodes").fetchall() == [("cancelled",), ("cancelled",)]
        assert conn.execute("select status from attempts").fetchall() == [("cancelled",)]
