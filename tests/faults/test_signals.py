"""A node killed by a signal: recorded as failed with that signal, siblings go on per the policy."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from tests.helpers import Collect, config, wf
from wtflow import Command, Engine, Node, PyFunc, Status
from wtflow.events import NodeFinished

SEGFAULT = [sys.executable, "-c", "import ctypes; ctypes.string_at(0)"]


def _kill_myself(sig: int) -> None:
    os.kill(os.getpid(), sig)


@pytest.mark.parametrize(
    ("executable", "sig"),
    [
        pytest.param(Command("kill -9 $$"), signal.SIGKILL, id="shell-kill-9"),
        pytest.param(Command(SEGFAULT), signal.SIGSEGV, id="segfault"),
        pytest.param(Command(["sh", "-c", "kill -ABRT $$"]), signal.SIGABRT, id="abort"),
        pytest.param(PyFunc(func=_kill_myself, args=(signal.SIGKILL,)), signal.SIGKILL, id="pyfunc-kill-9"),
        pytest.param(PyFunc(func=_kill_myself, args=(signal.SIGTERM,)), signal.SIGTERM, id="pyfunc-term"),
    ],
)
def test_signal_death_is_recorded_with_the_signal(
    tmp_path: Path, executable: Command | PyFunc, sig: int
) -> None:
    events = Collect()
    node = Node(name="victim", executable=executable)
    assert Engine(wf(node), config(tmp_path), listeners=[events]).run() == 1
    assert (node.status, node.retcode) == (Status.FAILED, -sig)
    finished = [e for e in events.of(NodeFinished) if e.path == ("root", "victim")]
    assert [(e.status, e.exit_code) for e in finished] == [(Status.FAILED, -sig)]


def test_parallel_siblings_of_a_killed_node_run_to_their_end(tmp_path: Path) -> None:
    done = tmp_path / "done"
    killed = Node(name="killed", executable=Command(f"echo $$ > {tmp_path}/k; kill -9 $$"))
    # The sibling waits until the killed node is gone (and reaped), so it surely outlives it.
    wait_gone = f"until [ -s {tmp_path}/k ] && ! kill -0 $(cat {tmp_path}/k) 2>/dev/null; do sleep 0.01; done"
    sibling = Node(name="sibling", executable=Command(f"{wait_gone}; touch {done}"))
    after = Node(name="after", executable=Command("true"))
    engine = Engine(
        wf(Node(name="group", parallel=True, children=[killed, sibling]), after), config(tmp_path)
    )
    assert engine.run() == 1
    assert (killed.status, killed.retcode) == (Status.FAILED, -9)
    assert sibling.status == Status.SUCCEEDED
    assert done.exists()
    assert after.status == Status.SKIPPED


def test_killed_optional_node_does_not_stop_the_sequence(tmp_path: Path) -> None:
    optional = Node(name="optional", executable=Command(SEGFAULT), allow_failure=True)
    after = Node(name="after", executable=Command("echo after"))
    assert Engine(wf(optional, after), config(tmp_path)).run() == 0
    assert (optional.status, optional.retcode) == (Status.FAILED, -signal.SIGSEGV)
    assert after.stdout_artifact.data == b"after\n"


def test_a_killed_node_is_retried_when_its_signal_is_listed(tmp_path: Path) -> None:
    counter = tmp_path / "n"
    script = f"echo x >> {counter}; [ $(wc -l < {counter}) -ge 2 ] || kill -9 $$"
    node = Node(name="n", executable=Command(script), retries=2, retry_delay=0, retry_on=[-9])
    assert Engine(wf(node), config(tmp_path)).run() == 0
    assert (node.status, node.attempts) == (Status.SUCCEEDED, 2)
