"""`Node(priority=...)`: when more nodes are ready than slots, the higher priority starts first,
ties in tree order. On the in-memory executor, then with real processes."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from tests.helpers import config
from tests.test_engine_policy import engine_for, task
from wtflow import Command, Engine, Node, Workflow


def started(executor: object) -> list[str]:
    return [r.attempt.path[-1] for r in executor.requests]  # type: ignore[attr-defined]


def test_with_one_slot_the_ready_nodes_start_by_priority_then_tree_order(tmp_path: Path) -> None:
    root = Node(name="root", parallel=True, children=[
        task("a"), task("b", priority=5), task("c", priority=1), task("d"), task("e", priority=-1),
        task("f", priority=5),
    ])  # fmt: skip
    engine, executor, _ = engine_for(tmp_path, root, run__max_parallel=1)
    assert engine.run() == 0
    assert started(executor) == ["b", "f", "c", "a", "d", "e"]


def test_without_priorities_the_slots_go_in_tree_order(tmp_path: Path) -> None:
    root = Node(name="root", parallel=True, children=[task(n) for n in "abcdef"])
    engine, executor, _ = engine_for(tmp_path, root, run__max_parallel=2)
    assert engine.run() == 0
    assert started(executor) == list("abcdef")


def test_a_groups_priority_holds_for_its_subtree_and_its_cap_is_shared_out_by_priority(
    tmp_path: Path,
) -> None:
    root = Node(name="root", parallel=True, children=[
        Node(name="docs", parallel=True, children=[task("d1"), task("d2")]),
        Node(name="tests", parallel=True, priority=3, children=[task("t1"), task("t2", priority=0)]),
        Node(name="deploy", parallel=True, max_parallel=1, children=[task("eu"), task("canary", priority=9)]),
    ])  # fmt: skip
    engine, executor, _ = engine_for(tmp_path, root, run__max_parallel=1)
    assert engine.run() == 0
    # t1 has its group's 3 (t2 its own 0) and takes the run's one slot first: canary is still
    # getting deploy's slot (ahead of eu), and asks for the run's once it has it, then first.
    assert started(executor) == ["t1", "canary", "d1", "d2", "t2", "eu"]


RECORD = "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n')"


def test_real_processes_start_by_priority_when_slots_are_short(tmp_path: Path) -> None:
    log = tmp_path / "order.txt"

    def step(name: str, **options: int) -> Node:
        cmd = shlex.join([sys.executable, "-c", RECORD, str(log), name])
        return Node(name=name, executable=Command(cmd), **options)  # type: ignore[arg-type]

    root = Node(name="root", parallel=True, children=[
        step("lint"), step("unit", priority=2), step("e2e", priority=10), step("docs", priority=-5),
        step("types", priority=2),
    ])  # fmt: skip
    assert Engine(Workflow(name="w", root=root), config(tmp_path, run__max_parallel=1)).run() == 0
    assert log.read_text().split() == ["e2e", "unit", "types", "lint", "docs"]
