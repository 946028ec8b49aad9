"""1,000 nodes leave no file descriptor, no child process and no zombie behind (counted in-process)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import config
from wtflow import Command, Engine, Node, PyFunc, Status, Workflow


def _open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def _children() -> list[int]:
    """Our child processes, zombies included (a zombie is a child we failed to reap)."""
    me = str(os.getpid())
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if stat.rsplit(")", 1)[1].split()[1] == me:
                found.append(int(entry))
    return found


def _write(n: int) -> None:
    sys.stdout.write(f"py {n}\n")


@pytest.mark.slow
def test_a_thousand_nodes_leave_no_fd_child_or_zombie(tmp_path: Path) -> None:
    """Commands and PyFuncs, passing and failing, some killed, some timing out, in parallel groups."""
    kinds: list[Callable[[int], Command | PyFunc]] = [
        lambda i: Command(f"echo cmd {i}"),
        lambda i: Command(["sh", "-c", f"echo argv {i} >&2; exit 3"]),
        lambda i: PyFunc(func=_write, args=(i,)),
        lambda i: Command("kill -9 $$"),
        lambda i: Command("sleep 5 & echo left $!"),  # a leftover in the group, stopped at the end
    ]
    groups = [
        Node(
            name=f"g{g}",
            parallel=True,
            children=[
                Node(name=f"n{i}", executable=kinds[i % len(kinds)](i)) for i in range(g * 100, g * 100 + 100)
            ],
        )
        for g in range(10)
    ]
    groups[0].children[0] = Node(name="timeout", executable=Command("sleep 60", timeout=0.2))
    workflow = Workflow(name="leaks", root=Node(name="root", parallel=False, children=groups))
    fds, children = _open_fds(), _children()
    engine = Engine(workflow, config(tmp_path, run__ignore_failure=True, run__max_parallel=16))
    assert engine.run() == 1
    # 3 kinds in 5 pass (less the node replaced by "timeout"); 2 fail, and so do groups and root.
    assert dict(engine.counts) == {"succeeded": 599, "failed": 400 + 10 + 1, "timed_out": 1}
    assert groups[0].children[0].status == Status.TIMED_OUT
    assert _open_fds() == fds
    assert _children() == children
