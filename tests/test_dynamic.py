"""Dynamic children, on the in-memory executor: the nodes a PyFunc returns join the tree as its
last children, with the indices after every node so far, and run after it like any other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.executors.memory import Script
from tests.test_engine_policy import engine_for, task
from wtflow import Node, PyFunc, Status
from wtflow.events import NodeFinished, NodesAdded


def grower(name: str, **kw: Any) -> Node:
    return Node(name=name, executable=PyFunc(func=print), **kw)  # the memory executor says what it returns


def test_returned_nodes_run_after_it_as_its_last_children(tmp_path: Path) -> None:
    fan = grower("fan", children=[task("static")])
    root = Node("root", children=[fan, task("after")])
    returned = [task("shard"), task("shard")]  # one name twice: folders shard, shard-2
    engine, executor, events = engine_for(tmp_path, root, {"root/fan": Script(returns=returned)})
    assert engine.run() == 0
    assert ["/".join(r.attempt.path) for r in executor.requests] == [
        "root/fan", "root/fan/static", "root/fan/shard", "root/fan/shard-2", "root/after",
    ]  # fmt: skip
    [added] = events.of(NodesAdded)
    assert added.parent == 1
    assert [(s.index, s.path, s.parent, s.position, s.dynamic) for s in added.nodes] == [
        (4, ("root", "fan", "shard"), 1, 1, True),
        (5, ("root", "fan", "shard-2"), 1, 2, True),
    ]
    # Announced before the PyFunc's own end, so every listener knows them when they start.
    kinds = [(type(e).__name__, getattr(e, "path", None)) for e in events.events]
    assert kinds.index(("NodesAdded", None)) < kinds.index(("NodeFinished", ("root", "fan")))
    # They came back from the PyFunc's process: the tree holds those copies, with their results.
    grown = [p.node for p in engine.workflow.placed[4:]]
    assert [(n.name, n.status) for n in grown] == [("shard", Status.SUCCEEDED), ("shard", Status.SUCCEEDED)]


def test_a_returned_pyfunc_may_return_more(tmp_path: Path) -> None:
    root = Node("root", children=[grower("fan")])
    scripts = {
        "root/fan": Script(returns=[grower("inner")]),
        "root/fan/inner": Script(returns=[task("leaf")]),
    }
    engine, executor, events = engine_for(tmp_path, root, scripts)
    assert engine.run() == 0
    assert [r.attempt.path[-1] for r in executor.requests] == ["fan", "inner", "leaf"]
    assert [["/".join(s.path) for s in e.nodes] for e in events.of(NodesAdded)] == [
        ["root/fan/inner"],
        ["root/fan/inner/leaf"],
    ]


def test_parallel_dynamic_children_run_at_once_and_a_failure_fails_the_run(tmp_path: Path) -> None:
    root = Node("root", children=[grower("fan", parallel=True), task("next")])
    scripts = {"root/fan": Script(returns=[task("a"), task("b")]), "root/fan/a": Script(exit_code=3)}
    engine, _, events = engine_for(tmp_path, root, scripts)
    assert engine.run() == 1
    finished = {"/".join(e.path): e.status for e in events.of(NodeFinished)}
    assert finished["root/fan/a"] is Status.FAILED
    assert finished["root/fan/b"] is Status.SUCCEEDED
    assert finished["root/next"] is Status.SKIPPED


def test_past_max_nodes_the_growing_node_fails_saying_why(tmp_path: Path) -> None:
    root = Node("root", children=[grower("fan")])
    returned = [task(f"n{i}") for i in range(3)]
    engine, executor, events = engine_for(
        tmp_path, root, {"root/fan": Script(returns=returned)}, run__max_nodes=4
    )
    assert engine.run() == 1
    assert [r.attempt.path[-1] for r in executor.requests] == ["fan"]
    assert not events.of(NodesAdded)
    fan = root.children[0]
    assert fan.status is Status.FAILED
    assert fan.stderr_artifact.text() == (
        "wtflow: node root/fan returned 3 nodes, which would make the run 5 nodes, more than "
        "run.max_nodes=4; return fewer, or raise [run] max_nodes (WTFLOW_MAX_NODES)\n"
    )


def test_a_returned_node_may_wait_for_a_node_of_the_tree(tmp_path: Path) -> None:
    slow = task("slow")
    root = Node("root", parallel=True, children=[grower("fan"), Node("other", children=[slow])])
    returned = [task("uses-slow", after=[slow])]
    engine, executor, events = engine_for(tmp_path, root, {"root/fan": Script(returns=returned)})
    assert engine.run() == 0
    order = [r.attempt.path[-1] for r in executor.requests]
    assert order.index("slow") < order.index("uses-slow")
    assert events.of(NodesAdded)[0].nodes[0].depends_on == ("root/other/slow",)


def test_returned_nodes_making_a_cycle_fail_the_growing_node(tmp_path: Path) -> None:
    """The returned node waits for `later`, which a sequence starts only after `fan` ended."""
    later = task("later")
    root = Node("root", children=[grower("fan"), later])
    engine, _, _ = engine_for(tmp_path, root, {"root/fan": Script(returns=[task("x", after=[later])])})
    assert engine.run() == 1
    assert (
        root.children[0]
        .stderr_artifact.text()
        .startswith(
            "wtflow: the nodes it returned cannot join the tree: workflow 'policy': its nodes wait for each "
            "other in a cycle: root/later -> root/fan/x -> "
        )
    )
    assert len(engine.workflow.placed) == 3  # the tree as it was
    assert later.status is Status.SKIPPED


def test_each_run_starts_from_the_tree_as_written(tmp_path: Path) -> None:
    root = Node("root", children=[grower("fan")])
    engine, executor, events = engine_for(tmp_path, root, {"root/fan": Script(returns=[task("child")])})
    assert engine.run() == 0
    assert engine.run() == 0
    assert [r.attempt.path[-1] for r in executor.requests] == ["fan", "child", "fan", "child"]
    assert [e.nodes[0].index for e in events.of(NodesAdded)] == [2, 2]
