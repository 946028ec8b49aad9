"""Dependencies across branches, decided before anything runs: `after=`, `a >> b`, reads that
imply a wait, cycles (the tree's own order counted), a wait on a node `--only` leaves out."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import config
from wtflow import Command, Engine, Node, PyFunc, Workflow, WorkflowError
from wtflow.dependencies import order, waits
from wtflow.digests import workflow_digests


def task(name: str, **kw: object) -> Node:
    return Node(name=name, executable=Command(f"echo {name}"), **kw)  # type: ignore[arg-type]


def _read(*args: object) -> None:
    del args


def test_rshift_chains_and_returns_the_right_hand_node() -> None:
    a, b, c, d = task("a"), task("b"), task("c"), task("d")
    assert (a >> b >> c) is c
    assert b.after == [a]
    assert c.after == [b]
    assert ([a, b] >> d) is d
    assert d.after == [a, b]
    a >> [c, d]  # a list on the right: each waits; waiting twice for one node counts once
    assert c.after == [b, a]
    assert d.after == [a, b]


@pytest.mark.parametrize(
    ("after", "message"),
    [
        ("build", r"^node 'x': after='build' is not a list of Nodes; use e.g. after=\[build\]"),
        ([1], r"^node 'x': after=\[1\] is not a list of Nodes"),
    ],
)
def test_after_must_be_nodes(after: object, message: str) -> None:
    with pytest.raises(WorkflowError, match=message):
        Node(name="x", after=after)  # type: ignore[arg-type]


def test_a_node_cannot_wait_for_itself() -> None:
    a = task("a")
    with pytest.raises(WorkflowError, match="a node cannot wait for itself"):
        a >> a


def test_waits_across_branches_by_index() -> None:
    build, lint = task("build"), task("lint")
    deploy = task("deploy", after=[build])
    reader = Node("report", PyFunc(func=_read, args=(lint.stdout_artifact,)))
    other = task("x", after=[lint])
    root = Node("ci", parallel=True, children=[Node("one", children=[build, deploy]), lint, reader, other])
    wf = Workflow(name="ci", root=root)
    found = waits(wf)
    paths = {wf.placed[i].path_str: [wf.placed[j].path_str for j in js] for i, js in found.items()}
    # An explicit wait, an implied one (the report reads lint's stdout), nothing for the rest.
    assert paths == {"ci/one/deploy": ["ci/one/build"], "ci/report": ["ci/lint"], "ci/x": ["ci/lint"]}


def test_a_wait_on_a_node_outside_the_workflow_is_refused() -> None:
    stray = task("stray")
    wf = Workflow(name="ci", root=Node("ci", children=[task("a", after=[stray])]))
    with pytest.raises(
        WorkflowError,
        match=r"^workflow 'ci': node ci/a waits for node 'stray' \(after=\), which is not in this workflow; ",
    ):
        waits(wf)


def test_a_cycle_is_refused_naming_its_nodes() -> None:
    a, b = task("a"), task("b")
    a.after.append(b)
    b.after.append(a)
    wf = Workflow(name="ci", root=Node("ci", parallel=True, children=[a, b]))
    with pytest.raises(
        WorkflowError,
        match=r"^workflow 'ci': its nodes wait for each other in a cycle: ci/(a|b) -> ci/(b|a) -> ci/\1 ",
    ):
        waits(wf)


def test_a_cycle_through_a_sequence_is_refused() -> None:
    """`first` waits for `second`, which a sequence starts only after `first` ended."""
    second = task("second")
    first = task("first", after=[second])
    wf = Workflow(name="ci", root=Node("ci", children=[first, second]))
    with pytest.raises(WorkflowError, match=r"cycle: ci/second -> ci/first -> ci/second \("):
        waits(wf)


def test_waiting_for_the_group_around_it_is_a_cycle() -> None:
    inner = task("inner")
    group = Node("group", children=[inner])
    inner.after.append(group)
    with pytest.raises(WorkflowError, match=r"cycle: ci/group(/inner)? -> "):
        waits(Workflow(name="ci", root=Node("ci", children=[group])))


def test_waiting_for_its_own_child_is_a_cycle() -> None:
    """A node's executable runs before its children start."""
    child = task("child")
    parent = task("parent", children=[child], after=[child])
    with pytest.raises(WorkflowError, match=r"cycle: ci/parent(/child)? -> ci/parent"):
        waits(Workflow(name="ci", root=Node("ci", children=[parent])))


def test_order_puts_what_is_waited_for_first() -> None:
    late = task("late")
    early = task("early", after=[late])
    wf = Workflow(name="ci", root=Node("ci", parallel=True, children=[early, late]))
    ranks = {i: n for n, i in enumerate(order(wf, waits(wf)))}
    assert ranks[2] < ranks[1]  # late before early, though early comes first in the tree
    assert ranks[0] < ranks[1]
    assert ranks[0] < ranks[2]


def test_the_order_of_a_long_chain_is_found_without_recursion() -> None:
    """O(nodes + edges), and no recursion limit: 5,000 nodes each waiting for the next."""
    nodes = [task(f"n{i}") for i in range(5000)]
    for a, b in zip(nodes[1:], nodes, strict=False):
        a >> b  # each waits for the one before it in the list... backwards in the tree
    wf = Workflow(name="ci", root=Node("ci", parallel=True, children=nodes))
    ranks = {i: n for n, i in enumerate(order(wf, waits(wf)))}
    assert ranks[5000] < ranks[1]


def test_a_wait_on_a_node_only_leaves_out_is_refused(tmp_path: Path) -> None:
    build = task("build")
    deploy = task("deploy", after=[build])
    engine = Engine(
        Workflow(name="ci", root=Node("ci", parallel=True, children=[build, deploy])),
        config(tmp_path),
        only=lambda p: p.path_str == "ci/deploy",
    )
    with pytest.raises(
        WorkflowError,
        match=r"^workflow 'ci': node ci/deploy waits for ci/build, which --only leaves out; select it too$",
    ):
        engine.run()


def test_what_a_node_waits_for_is_upstream_in_its_digest() -> None:
    def digests(build_cmd: str) -> str:
        build = Node("build", Command(build_cmd))
        deploy = task("deploy", after=[build])
        wf = Workflow(name="ci", root=Node("ci", parallel=True, children=[deploy, build]))
        return str(workflow_digests(wf, waits(wf))[1])

    assert digests("make") != digests("make all")


def test_dry_run_shows_what_each_node_waits_for(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lint = task("lint")
    report = Node("report", PyFunc(func=_read, args=(lint.stdout_artifact,)))
    deploy = task("deploy", after=[lint])
    root = Node("ci", parallel=True, children=[lint, report, deploy])
    assert Engine(Workflow(name="ci", root=root), config(tmp_path), dry_run=True).run() == 0
    out = capsys.readouterr().out
    assert "  - report  run: not resuming a run\n      after: ci/lint\n" in out
    assert "  - deploy  run: not resuming a run\n      after: ci/lint\n" in out
