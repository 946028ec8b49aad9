"""Ctrl-C and SIGTERM to a script running Engine(wf).run(): everything stops, 130/143 comes back."""

from __future__ import annotations

import os
import signal
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
    env = {**os.environ, "WTFLOW_DB_URL": "", "WTFLOW_CONSOLE": "quiet"}
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
