"""A console whose stdout nobody reads (`wtflow run | less`, paused) must not hold up the run.

The script runs `Engine(wf).run()` with its stdout a pipe this test does not read until the
run's work is done: a node prints ~10 MiB (far more than a pipe holds), while beside it a node
hits its time limit and then a PyFunc forks the orchestrator (while the console's writer is
stuck in a write) and leaves a file behind. Only then is the pipe read: every byte, in order.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import gone

LINES = 1_500_000  # `seq` prints ~10.9 MB

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from wtflow import Command, Config, Engine, Node, PyFunc, Workflow

    folder = Path(sys.argv[1])

    def after() -> None:
        print("from a forked child")
        (folder / "after-the-time-limit").touch()

    big = Node(name="big", executable=Command("seq 1 {lines}"))
    limited = Node(name="limited", executable=Command("sleep 60"), timeout=0.5, allow_failure=True)
    later = Node(name="later", executable=PyFunc(after))
    root = Node(name="root", parallel=True, children=[big, Node(name="seq", children=[limited, later])])
    config = Config.load(
        environ={{}},
        overrides={{"storage.state_dir": folder / "state", "db.url": "", "run.console": sys.argv[2]}},
    )
    code = Engine(Workflow(name="stall", root=root), config).run()
    statuses = {{n.name: str(n.status) for n in (big, limited, later)}}
    (folder / "result.json").write_text(json.dumps({{"code": code, "statuses": statuses}}))
    """
).format(lines=LINES)


def _wait_for(
    condition: Callable[[], bool], what: str, proc: subprocess.Popen[bytes], timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout  # a hang guard, not a speed claim
    while not condition():
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


@pytest.mark.parametrize("console", ["raw", "plain"])
def test_a_stdout_nobody_reads_holds_up_nothing_and_gets_every_byte_later(
    tmp_path: Path, console: str
) -> None:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    with (tmp_path / "stderr").open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, str(script), str(tmp_path), console], stdout=subprocess.PIPE, stderr=err
        )
    with proc:
        shown = _stall_then_read(tmp_path, proc)
    result = json.loads((tmp_path / "result.json").read_text())
    assert result == {
        "code": 0,
        "statuses": {"big": "succeeded", "limited": "timed_out", "later": "succeeded"},
    }
    expected = _seq(LINES)
    if console == "raw":
        # Other nodes' lines may come between big's, never inside them.
        assert shown.replace(b"from a forked child\n", b"") == expected
    else:
        prefix = b"[root/big] "
        lines = [line[len(prefix) :] + b"\n" for line in shown.splitlines() if line.startswith(prefix)]
        assert b"".join(lines) == expected
        assert b"[root/seq/later] from a forked child\n" in shown
        assert b"<== root/seq/limited timed_out (allowed)" in shown


def _seq(n: int) -> bytes:
    return b"".join(b"%d\n" % i for i in range(1, n + 1))


def _stall_then_read(tmp_path: Path, proc: subprocess.Popen[bytes]) -> bytes:
    assert proc.stdout is not None
    big_out = tmp_path / "state" / "artifacts" / "stall" / "latest" / "root" / "big" / "stdout"
    size = len(_seq(LINES))
    # Nobody reads the pipe, yet the time limit fires, the next node runs and the output is kept.
    _wait_for((tmp_path / "after-the-time-limit").exists, "the node after the time limit", proc)
    _wait_for(lambda: big_out.exists() and big_out.stat().st_size == size, "big's output", proc)
    assert proc.poll() is None, "the run ended before its output could have been read"
    shown = proc.stdout.read()
    assert proc.wait(timeout=60) == 0, (tmp_path / "stderr").read_text()
    return shown


INTERRUPTED = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from wtflow import Command, Config, Engine, Node, Workflow

    folder = Path(sys.argv[1])
    cmd = f"seq 1 {lines}; echo $$ > {{folder / 'pid'}}; exec sleep 60"
    config = Config.load(environ={{}}, overrides={{"storage.state_dir": folder / "state", "db.url": ""}})
    code = Engine(Workflow(name="stall", root=Node(name="big", executable=Command(cmd))), config).run()
    (folder / "code").write_text(str(code))
    """
).format(lines=LINES)


def test_ctrl_c_stops_the_nodes_while_nobody_reads_stdout(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(INTERRUPTED)
    with (tmp_path / "stderr").open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE, stderr=err
        )
    with proc:
        assert proc.stdout is not None
        pid_file = tmp_path / "pid"
        _wait_for(lambda: pid_file.exists() and pid_file.read_text().endswith("\n"), "the node's pid", proc)
        node = int(pid_file.read_text())
        proc.send_signal(signal.SIGINT)
        _wait_for(lambda: gone(node), "the node to be stopped", proc)
        shown = proc.stdout.read()
        assert proc.wait(timeout=60) == 0, (tmp_path / "stderr").read_text()
    assert (tmp_path / "code").read_text() == "130"
    assert shown == _seq(LINES)
