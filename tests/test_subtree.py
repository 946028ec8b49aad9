"""Options set on a group hold for its subtree: budgets, caps, inherited rules; fail-fast groups.

The engine's policy on the in-memory executor, and the processes of a budget on the local one.
"""

from __future__ import annotations

import asyncio
import shlex
import sys
from pathlib import Path
from typing import Any, cast

import pytest

from tests.executors.memory import MemoryExecutor, Script
from tests.helpers import Collect, config, gone
from tests.test_engine_policy import engine_for, statuses, task, until
from wtflow import Command, Engine, Node, Status, Workflow, WorkflowError
from wtflow.events import NodeFinished, NodeStarted, RunStarted


def reasons(events: Collect) -> dict[str, str | None]:
    return {e.path[-1]: e.reason for e in events.of(NodeFinished) if e.status is Status.SKIPPED}


def test_a_groups_budget_stops_what_runs_in_it_and_skips_the_rest(tmp_path: Path) -> None:
    group = Node(name="g", timeout=0.05, children=[task("a"), task("b")])
    root = Node(name="root", children=[group, task("after")])
    engine, _, events = engine_for(tmp_path, root, {"root/g/a": Script(hang=True)})
    assert engine.run() == 1
    # The group whose budget ran out is timed_out; above it, a failure as any other.
    assert statuses(root) == {"root": Status.FAILED, "g": Status.TIMED_OUT, "a": Status.TIMED_OUT,
                              "b": Status.SKIPPED, "after": Status.SKIPPED}  # fmt: skip
    assert reasons(events) == {"b": "timed out: root/g", "after": "upstream failed: root/g"}


def test_a_budget_bounds_parallel_children_and_nodes_waiting_for_a_retry(tmp_path: Path) -> None:
    group = Node(name="g", parallel=True, timeout=0.1, max_parallel=2,
                 children=[task("hangs"), task("retrying", retries=5, retry_delay=3600), task("next"),
                           task("waits")])  # fmt: skip
    scripts = {"g/hangs": Script(hang=True), "g/retrying": Script(exit_code=1), "g/next": Script(hang=True)}
    engine, _, events = engine_for(tmp_path, group, scripts)
    assert engine.run() == 1
    assert statuses(group) == {"g": Status.TIMED_OUT, "hangs": Status.TIMED_OUT, "retrying": Status.TIMED_OUT,
                               "next": Status.TIMED_OUT, "waits": Status.SKIPPED}  # fmt: skip
    assert reasons(events) == {"waits": "timed out: g"}


def test_a_node_inside_a_budget_is_stopped_with_its_processes(tmp_path: Path) -> None:
    """The budget ends a real process group (TERM, grace, KILL), and the node is timed_out."""
    pidfile = tmp_path / "pid"
    cmd = f"echo $$ > {shlex.quote(str(pidfile))}; exec sleep 60"
    group = Node(name="g", timeout=0.5, children=[Node(name="sleeps", executable=Command(cmd))])
    assert Engine(Workflow(name="w", root=group), config(tmp_path)).run() == 1
    sleeps = group.children[0]
    assert (group.status, sleeps.status) == (Status.TIMED_OUT, Status.TIMED_OUT)
    assert gone(int(pidfile.read_text()))


async def test_a_groups_max_parallel_caps_its_subtree_under_the_runs_cap(tmp_path: Path) -> None:
    go = asyncio.Event()
    inner = Node(name="inner", parallel=True, children=[task(f"i{n}") for n in range(4)])
    group = Node(name="g", parallel=True, max_parallel=2, children=[inner, task("x"), task("y")])
    root = Node(name="root", parallel=True, children=[group, task("free")])
    names = [*(f"root/g/inner/i{n}" for n in range(4)), "root/g/x", "root/g/y", "root/free"]
    engine, executor, _ = engine_for(tmp_path, root, {n: Script(wait=go) for n in names}, run__max_parallel=8)
    run = asyncio.create_task(engine.run_async())
    await until(lambda: executor.running == 3)
    for _ in range(20):  # others would have started by now if the cap let them
        await asyncio.sleep(0)
    assert "root/free" in ["/".join(r.attempt.path) for r in executor.requests]
    go.set()
    assert await run == 0
    assert executor.peak == 3  # two in the group, and "free" beside it
    assert len(executor.requests) == 7


def test_rules_set_on_a_group_hold_for_its_subtree(tmp_path: Path) -> None:
    inner = Node(name="inner", env={"B": "2", "A": "inner"}, cwd="sub",
                 children=[task("deep", retries=0), task("flaky")])  # fmt: skip
    group = Node(name="g", retries=2, retry_delay=0, retry_on=[3], env={"A": "1"}, cwd=tmp_path,
                 children=[inner])  # fmt: skip
    scripts = {"g/inner/deep": Script(exit_code=3), "g/inner/flaky": [Script(exit_code=3), Script()]}
    engine, executor, _ = engine_for(tmp_path, group, scripts, run__ignore_failure=True)
    assert engine.run() == 1
    by_node: dict[str, list[Any]] = {}
    for r in executor.requests:
        by_node.setdefault(r.attempt.path[-1], []).append(r)
    assert len(by_node["deep"]) == 1  # its own retries=0 wins over the group's
    assert len(by_node["flaky"]) == 2
    request = by_node["flaky"][0]
    assert (request.env["A"], request.env["B"], request.cwd) == ("inner", "2", tmp_path / "sub")


def test_allow_failure_on_a_group_lets_its_children_fail_and_the_rest_run(tmp_path: Path) -> None:
    group = Node(
        name="g", allow_failure=True, children=[task("x"), task("y"), task("z", allow_failure=False)]
    )
    root = Node(name="root", children=[group, task("after")])
    engine, _, events = engine_for(tmp_path, root, {"root/g/x": Script(exit_code=1)})
    assert engine.run() == 0
    assert statuses(root) == {"root": Status.SUCCEEDED, "g": Status.FAILED, "x": Status.FAILED,
                              "y": Status.SUCCEEDED, "z": Status.SUCCEEDED, "after": Status.SUCCEEDED}  # fmt: skip
    specs = {s.path[-1]: s.allow_failure for s in events.of(RunStarted)[0].nodes}
    assert specs == {"root": False, "g": True, "x": True, "y": True, "z": False, "after": False}


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Node(name="leaf", executable=Command("true"), max_parallel=2),
         r"^node leaf: max_parallel=2 caps the processes of a node's children, and it has none; "),
        (lambda: Node(name="seq", fail_fast=True, children=[Node(name="a", executable=Command("true"))]),
         r"^node seq: fail_fast=True stops the running siblings of a parallel group, and it is not one; "),
        (lambda: Node(name="n", max_parallel=0), r"^node 'n': max_parallel=0 is not a whole number >= 1"),
        (lambda: Node(name="n", allow_failure=cast(bool, "yes")), r"^node 'n': allow_failure='yes' is not True or False"),
    ],
)  # fmt: skip
def test_an_option_that_would_do_nothing_is_refused(build: Any, message: str) -> None:
    with pytest.raises(WorkflowError, match=message):
        Workflow(name="w", root=build())


class OnStart(Collect):
    """Sets `event` once every node named in `names` has started."""

    def __init__(self, names: str, event: asyncio.Event) -> None:
        super().__init__()
        self.waiting, self.event = set(names.split()), event

    def handle(self, event: Any) -> None:
        super().handle(event)
        if isinstance(event, NodeStarted):
            self.waiting.discard(event.path[-1])
            if not self.waiting:
                self.event.set()


def test_fail_fast_cancels_the_running_siblings_and_skips_the_rest(tmp_path: Path) -> None:
    hangs_started = asyncio.Event()
    group = Node(name="g", parallel=True, fail_fast=True, max_parallel=2,
                 children=[task("fails"), task("hangs"), task("later")])  # fmt: skip
    root = Node(name="root", children=[group, task("after")])
    scripts = {"root/g/fails": Script(exit_code=2, wait=hangs_started), "root/g/hangs": Script(hang=True)}
    executor, events = MemoryExecutor(scripts), OnStart("hangs", hangs_started)
    engine = Engine(Workflow(name="w", root=root), config(tmp_path), executor=executor, listeners=[events])
    assert engine.run() == 1
    assert statuses(root) == {"root": Status.FAILED, "g": Status.FAILED, "fails": Status.FAILED,
                              "hangs": Status.CANCELLED, "later": Status.SKIPPED, "after": Status.SKIPPED}  # fmt: skip
    assert executor.cancelled == ["root/g/hangs"]
    assert reasons(events) == {"later": "fail-fast", "after": "upstream failed: root/g"}


def test_without_fail_fast_the_running_siblings_finish(tmp_path: Path) -> None:
    started = asyncio.Event()
    group = Node(name="g", parallel=True, children=[task("fails"), task("waits")])
    scripts = {"g/fails": Script(exit_code=1, wait=started), "g/waits": Script(wait=started)}
    engine = Engine(Workflow(name="w", root=group), config(tmp_path), executor=MemoryExecutor(scripts),
                    listeners=[OnStart("fails waits", started)])  # fmt: skip
    assert engine.run() == 1
    assert statuses(group)["waits"] is Status.SUCCEEDED


def test_the_runs_fail_fast_stops_every_group_and_wins_over_keep_going(tmp_path: Path) -> None:
    left = Node(name="left", parallel=True, children=[task("slow"), task("fails")])
    right = Node(name="right", children=[task("busy")])
    root = Node(name="root", parallel=True, children=[left, right])
    busy = asyncio.Event()
    scripts = {"root/left/slow": Script(hang=True), "root/left/fails": Script(exit_code=1, wait=busy),
               "root/right/busy": Script(hang=True)}  # fmt: skip
    executor = MemoryExecutor(scripts)
    engine = Engine(Workflow(name="w", root=root), config(tmp_path, run__fail_fast=True, run__ignore_failure=True),
                    executor=executor, listeners=[OnStart("busy slow", busy)])  # fmt: skip
    assert engine.run() == 1
    assert sorted(executor.cancelled) == ["root/left/slow", "root/right/busy"]
    assert statuses(root)["right"] is Status.CANCELLED


def test_fail_fast_ends_the_siblings_processes(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    sleeper = f"echo $$ > {shlex.quote(str(pidfile))}; exec sleep 60"
    fail = shlex.join(
        [
            sys.executable,
            "-c",
            f"import os,time\nwhile not os.path.exists({str(pidfile)!r}): time.sleep(0.01)\nraise SystemExit(1)",
        ]
    )
    group = Node(name="g", parallel=True, fail_fast=True, children=[
        Node(name="sleeps", executable=Command(sleeper)), Node(name="fails", executable=Command(fail))])  # fmt: skip
    events = Collect()
    assert Engine(Workflow(name="w", root=group), config(tmp_path), listeners=[events]).run() == 1
    assert group.children[0].status is Status.CANCELLED
    assert gone(int(pidfile.read_text()))
    assert len(events.of(NodeStarted)) == 2
