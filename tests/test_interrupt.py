"""Ctrl-C, SIGTERM and SIGHUP to a script running Engine(wf).run(): everything stops, 130/143 comes back."""

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


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
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


CLEANUP = """
import os, pathlib, signal, sys, time, wtflow
room, kind = pathlib.Path(sys.argv[1]), sys.argv[2]

def stubborn(name, room):
    # Notes the SIGTERM and goes on, so only SIGKILL ends it.
    signal.signal(signal.SIGTERM, lambda *_: (room / f"{name}-termed").touch())
    (room / f"{name}-pid").write_text(str(os.getpid()))
    while True:
        time.sleep(1)

def node(name):
    if kind == "pyfunc":
        return wtflow.PyFunc(func=stubborn, args=(name, room))
    code = f"import pathlib, sys; sys.path.insert(0, {str(pathlib.Path(__file__).parent)!r}); import script; script.stubborn(sys.argv[1], pathlib.Path(sys.argv[2]))"
    return wtflow.Command([sys.executable, "-c", code, name, str(room)])

if __name__ == "__main__":
    work = wtflow.Node(name="work", executable=node("work"))
    cleanup = wtflow.Node(name="cleanup", executable=node("cleanup"), always=True)
    engine = wtflow.Engine(wtflow.Workflow(name="w", root=wtflow.Node(name="top", children=[work, cleanup])))
    raise SystemExit(engine.run())
"""


def _started(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0


@pytest.mark.parametrize("kind", ["command", "pyfunc"])
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_second_interrupt_during_the_cleanup_ends_it_at_once(
    tmp_path: Path, kind: str, sig: int, code: int
) -> None:
    """The first runs the `always` node; the second does not wait out its 60 s kill grace."""
    room = tmp_path / "room"
    room.mkdir()
    db = tmp_path / "w.db"
    (tmp_path / "script.py").write_text(CLEANUP)
    env = {
        **os.environ,
        "WTFLOW_DB_URL": f"sqlite:///{db}",
        "WTFLOW_CONSOLE": "quiet",
        "WTFLOW_KILL_GRACE": "60",
    }
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "script.py"), str(room), kind], cwd=tmp_path, env=env
    )
    wait_for(lambda: _started(room / "work-pid"), "work to start")
    proc.send_signal(sig)
    wait_for((room / "work-termed").exists, "work's graceful stop")
    os.kill(int((room / "work-pid").read_text()), signal.SIGKILL)  # as its grace would: the cleanup starts
    wait_for(lambda: _started(room / "cleanup-pid"), "the cleanup to start")
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == code  # not after the cleanup's 60 s grace
    assert gone(int((room / "cleanup-pid").read_text()))
    with sqlite3.connect(db) as conn:
        assert conn.execute("select status, exit_code from runs").fetchall() == [("cancelled", code)]
        assert dict(conn.execute("select name, status from nodes").fetchall()) == {
            "top": "cancelled", "work": "cancelled", "cleanup": "cancelled"
        }  # fmt: skip
