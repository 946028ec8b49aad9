"""Output under abuse: closed pipes, floods with no newline, and wtflow itself killed mid-run."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import Collect, config, wait_for, wf
from tests.procs import PATTERN, argv, wait_for_pids
from wtflow import Command, Engine, Node, Status
from wtflow.events import NodeFinished

ROOT = Path(__file__).parents[2]


def test_node_that_closes_stdout_early_runs_to_its_end(tmp_path: Path) -> None:
    node = Node(name="n", executable=Command(argv("close_stdout.py", 2000, 3)))
    assert Engine(wf(node), config(tmp_path)).run() == 1
    assert (node.status, node.retcode) == (Status.FAILED, 3)
    assert node.stdout_artifact.data == b""
    assert node.stderr_artifact.data == b"".join(f"err {i}\n".encode() for i in range(2000))


def test_node_that_closes_both_streams_and_keeps_running(tmp_path: Path) -> None:
    node = Node(name="n", executable=Command("exec >&- 2>&-; sleep 0.3; exit 4"))
    assert Engine(wf(node), config(tmp_path)).run() == 1
    assert (node.status, node.retcode) == (Status.FAILED, 4)


def test_node_reading_stdin_sees_end_of_file_at_once(tmp_path: Path) -> None:
    """stdin is /dev/null: a node that reads it never waits on the user's terminal."""
    node = Node(
        name="n", executable=Command([sys.executable, "-c", "import sys; print(len(sys.stdin.read()))"])
    )
    assert Engine(wf(node), config(tmp_path)).run() == 0
    assert node.stdout_artifact.data == b"0\n"


FLOOD_SCRIPT = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tests.procs import argv
from wtflow import Command, Config, Engine, Node, Workflow
out, err, state = int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
node = Node(name="flood", executable=Command(argv("flood.py", out, err)))
cfg = Config.load(environ={}, overrides={"db.url": "", "storage.state_dir": state, "run.console": "raw"})
code = Engine(Workflow(name="flood", root=node), cfg).run()
# VmHWM, not ru_maxrss: that one keeps the peak of the test runner this was forked from.
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:")).split()[1]
print(json.dumps({"code": code, "maxrss_kib": int(peak),
                  "stdout": str(node.stdout_artifact.path), "stderr": str(node.stderr_artifact.path)}),
      file=open(state / "result.json", "w"))
"""


def _flood(tmp_path: Path, name: str, out: int, err: int) -> dict[str, object]:
    state = tmp_path / name
    state.mkdir()
    # The console's output goes to /dev/null: the raw console (the default) still sees every byte.
    subprocess.run(
        [sys.executable, "-c", FLOOD_SCRIPT, str(ROOT), str(out), str(err), str(state)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
        timeout=120,
    )
    return json.loads((state / "result.json").read_text())  # type: ignore[no-any-return]


def _same_as_pattern(path: Path, size: int) -> bool:
    expected = memoryview(PATTERN)
    with path.open("rb") as f:
        seen = 0
        while chunk := f.read(len(PATTERN)):
            if chunk != expected[: len(chunk)]:
                return False
            seen += len(chunk)
    return seen == size


@pytest.mark.slow
def test_flood_without_newlines_keeps_memory_flat_and_every_byte(tmp_path: Path) -> None:
    """300 MiB on stdout and 64 MiB on stderr, no newline anywhere: wtflow's peak memory grows by
    less than 48 MiB over the same run with 1 MiB (holding the output would add 364 MiB)."""
    small = _flood(tmp_path, "small", 1 << 20, 1 << 16)
    big_out, big_err = 300 << 20, 64 << 20
    big = _flood(tmp_path, "big", big_out, big_err)
    assert big["code"] == 0
    assert _same_as_pattern(Path(str(big["stdout"])), big_out)
    assert _same_as_pattern(Path(str(big["stderr"])), big_err)
    growth_kib = int(str(big["maxrss_kib"])) - int(str(small["maxrss_kib"]))
    assert growth_kib < 48 * 1024


KILLED_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from tests.procs import argv
from wtflow import Command, Config, Engine, Node, Workflow
state = Path(sys.argv[2])
nodes = [Node(name="done", executable=Command("echo finished before the kill")),
         Node(name="chatty", executable=Command(argv("chatty.py", 5000, state / "chatty.pid")))]
cfg = Config.load(environ={}, overrides={"db.url": "", "storage.state_dir": state, "run.console": "quiet"})
Engine(Workflow(name="killed", root=Node(name="root", children=nodes)), cfg).run()
"""


def test_sigkill_of_wtflow_leaves_the_output_read_so_far_on_disk(tmp_path: Path) -> None:
    state = tmp_path / "state"
    wtflow_proc = subprocess.Popen([sys.executable, "-c", KILLED_SCRIPT, str(ROOT), str(state)])
    try:
        wait_for_pids(state / "chatty.pid")
        # chatty wrote its pid after its last line: every line is in the pipe or on disk by now.
        run_dir = (state / "artifacts" / "killed" / "latest").resolve()
        out = run_dir / "root" / "chatty" / "stdout"
        expected = b"".join(f"line {i}\n".encode() for i in range(5000))
        # The pipe may still hold lines wtflow has not read; wait (a hang guard) until it has all.
        # A store that kept output in memory, or in a write buffer, never gets there.
        wait_for(lambda: out.stat().st_size >= len(expected), "wtflow to read every line")
        wtflow_proc.send_signal(signal.SIGKILL)
        assert wtflow_proc.wait(timeout=30) == -signal.SIGKILL
        assert out.read_bytes() == expected
        assert (run_dir / "root" / "done" / "stdout").read_bytes() == b"finished before the kill\n"
    finally:
        wtflow_proc.kill()
        wtflow_proc.wait()
        # The watchdog ends the node; this is a safety net should the test fail before that.
        if (state / "chatty.pid").exists():
            for pid in wait_for_pids(state / "chatty.pid"):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)


def test_lines_keep_their_order_across_the_two_streams_on_a_busy_machine(tmp_path: Path) -> None:
    """Regression test: a pump read its pipe at once when it started, so stderr's line, written
    second, could be read while stdout's waited for the loop's next round; on a busy machine 5 to
    35 nodes of 300 recorded (and `logs` showed) stderr first. The loop's readiness comes in the
    order the bytes came. Two busy loops keep both cores taken meanwhile."""
    hogs = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(2)]
    try:
        nodes = [Node(f"n{i}", Command("echo out; echo err >&2")) for i in range(200)]
        events = Collect()
        assert Engine(wf(*nodes), config(tmp_path), listeners=[events]).run() == 0
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    orders = [e.output_order for e in events.of(NodeFinished) if e.output_order]
    assert len(orders) == 200
    assert [o for o in orders if o[0][0] != "stdout"] == []
