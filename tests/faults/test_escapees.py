"""Processes that try to outlive their node: daemons (double fork + setsid) and SIGTERM-ignorers.

Each must be gone when the run ends, whether its node ended on its own, hit its time limit or
was cancelled. "Gone" is checked by pid in procfs after the run (tests.helpers.gone).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from tests.helpers import config, gone, wait_for, wf
from tests.procs import argv, wait_for_pids, write_pids
from wtflow import Command, Engine, Node, PyFunc, Status


def _all_gone(pids: list[int]) -> bool:
    # SIGKILL is asynchronous: a killed process needs a moment to become a zombie its (other)
    # parent then reaps. The wait is a hang guard; the assertion is on the pids.
    return wait_for(lambda: all(gone(p) for p in pids), f"processes {pids} to end", timeout=10)


def test_daemon_left_by_a_finished_node_is_gone_when_the_run_ends(tmp_path: Path) -> None:
    pid_file = tmp_path / "daemon"
    node = Node(name="daemonise", executable=Command(argv("daemon.py", pid_file)))
    after = Node(name="after", executable=Command("true"))
    assert Engine(wf(node, after), config(tmp_path)).run() == 0
    assert node.status == Status.SUCCEEDED
    assert _all_gone(wait_for_pids(pid_file))


def test_daemon_holding_stdout_does_not_keep_the_node_running(tmp_path: Path) -> None:
    """The daemon left the group but keeps the node's stdout open; the node still ends (by its
    time limit here, as its leader waits forever) and the daemon goes with it."""
    pid_file = tmp_path / "daemon"
    node = Node(name="n", executable=Command(argv("daemon.py", pid_file, "wait"), timeout=1))
    assert Engine(wf(node), config(tmp_path, run__kill_grace=0.2)).run() == 1
    assert node.status == Status.TIMED_OUT
    assert _all_gone(wait_for_pids(pid_file))


def test_daemon_holding_stdout_after_its_leader_exited(tmp_path: Path) -> None:
    """The leader exits 0 but the daemon it left keeps the pipe open: the node ends, succeeded."""
    pid_file = tmp_path / "daemon"
    script = f"{' '.join(argv('daemon.py', pid_file, 'wait'))} & until [ -s {pid_file} ]; do sleep 0.01; done; exit 0"
    node = Node(name="n", executable=Command(f"({script}) ; echo leader-done"))
    assert Engine(wf(node), config(tmp_path, run__kill_grace=0.2)).run() == 0
    assert node.status == Status.SUCCEEDED
    assert node.stdout_artifact.data == b"leader-done\n"
    assert _all_gone(wait_for_pids(pid_file))


def test_stubborn_node_and_grandchild_are_killed_after_the_grace(tmp_path: Path) -> None:
    pid_file = tmp_path / "stubborn"
    node = Node(name="stubborn", executable=Command(argv("stubborn.py", pid_file), timeout=1))
    assert Engine(wf(node), config(tmp_path, run__kill_grace=0.2)).run() == 1
    assert node.status == Status.TIMED_OUT
    assert node.stdout_artifact.data == b"ready\n"
    assert _all_gone(wait_for_pids(pid_file))


async def test_cancel_kills_stubborn_processes_and_daemons(tmp_path: Path) -> None:
    stubborn_pids, daemon_pids = tmp_path / "stubborn", tmp_path / "daemon"
    nodes = [
        Node(name="stubborn", executable=Command(argv("stubborn.py", stubborn_pids))),
        Node(name="daemon", executable=Command(argv("daemon.py", daemon_pids, "wait"))),
    ]
    engine = Engine(wf(*nodes, parallel=True), config(tmp_path, run__kill_grace=0.2))
    task = asyncio.create_task(engine.run_async())
    async with asyncio.timeout(30):
        while not (stubborn_pids.exists() and daemon_pids.exists()):
            await asyncio.sleep(0.01)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        else:
            raise AssertionError("run_async swallowed the cancellation")
    assert [n.status for n in nodes] == [Status.CANCELLED, Status.CANCELLED]
    assert _all_gone(wait_for_pids(stubborn_pids) + wait_for_pids(daemon_pids))


def _daemonise(pid_file: Path, then_wait: bool, deaf: bool = False) -> None:
    """A daemon made the Python way: fork, setsid, fork, and no exec; `deaf`: then the function
    ignores SIGTERM, so its process never ends its descendants itself and dies by SIGKILL."""
    ready, up = os.pipe()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.closerange(0, 3)
            write_pids(pid_file, os.getpid())
            os.write(up, b"x")
            time.sleep(300)
        os.read(ready, 1)  # the daemon has said its pid before the function can return and end it
        os._exit(0)
    os.wait()
    if deaf:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while then_wait:
        time.sleep(1)


@pytest.mark.parametrize(
    ("then_wait", "deaf"), [(False, False), (True, False), (True, True)],
    ids=["returns", "times-out", "times-out-ignoring-sigterm"],
)  # fmt: skip
def test_daemon_forked_by_a_pyfunc_is_gone_when_its_node_ends(
    tmp_path: Path, then_wait: bool, deaf: bool
) -> None:
    """Regression: a daemon forked without exec keeps the orchestrator's original environment in
    procfs, so the process token never marked it and it outlived the run. A function that ignores
    SIGTERM dies by SIGKILL without ending it: the fork server, a subreaper, gets it and ends it."""
    pid_file = tmp_path / "daemon"
    node = Node(name="n", executable=PyFunc(func=_daemonise, args=(pid_file, then_wait, deaf), timeout=1))
    after = Node(name="after", executable=Command("true"))
    Engine(wf(node, after), config(tmp_path, run__kill_grace=0.2)).run()
    assert node.status == (Status.TIMED_OUT if then_wait else Status.SUCCEEDED)
    (pid,) = wait_for_pids(pid_file)
    # Checked before the run's own end-of-run sweep could matter: `after` ran in between.
    assert _all_gone([pid])


def _ignore_term_with_a_grandchild(pid_file: Path) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = os.fork()
    if child == 0:
        time.sleep(300)
        os._exit(0)
    write_pids(pid_file, os.getpid(), child)
    time.sleep(300)


def test_pyfunc_that_ignores_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    node = Node(name="n", executable=PyFunc(func=_ignore_term_with_a_grandchild, args=(pid_file,), timeout=1))
    assert Engine(wf(node), config(tmp_path, run__kill_grace=0.2)).run() == 1
    assert node.status == Status.TIMED_OUT
    assert _all_gone(wait_for_pids(pid_file))
