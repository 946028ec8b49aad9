"""Reading an artifact that cannot be complete yet is refused before anything runs."""

from __future__ import annotations

import pytest

from wtflow import Command, Engine, Node, PyFunc, Workflow, WorkflowError
from wtflow.model import Artifact
from wtflow.reads import check_reads


def _read(*artifacts: Artifact) -> None:
    del artifacts


def _reader(name: str, *artifacts: Artifact) -> Node:
    return Node(name=name, executable=PyFunc(func=_read, args=artifacts))


def _echo(name: str) -> Node:
    return Node(name=name, executable=Command(f"echo {name}"))


def test_reading_an_earlier_sibling_or_an_ancestor_is_fine() -> None:
    first = Node(name="first", executable=Command("echo a"), children=[_echo("inner")])
    inner = first.children[0]
    reader = _reader("reader", first.stdout_artifact, inner.stderr_artifact)
    top = Node(name="top", executable=Command("echo top"), children=[first, reader])
    deep = _reader("deep", top.stdout_artifact)
    reader.children.append(deep)
    check_reads(Workflow(name="w", root=top))


def test_a_parallel_siblings_artifact_is_a_wait_for_it() -> None:
    """Once the reader got empty data and the run succeeded; then such a read was refused; now
    the read makes the reader wait for the writer, as `after=` would (issue 12)."""
    writer = Node(name="group", children=[_echo("writer")])
    reader = _reader("reader", writer.children[0].stdout_artifact)
    wf = Workflow(name="w", root=Node(name="root", parallel=True, children=[writer, reader]))
    assert check_reads(wf) == {3: [2]}


def test_a_later_nodes_artifact_is_refused() -> None:
    later = _echo("later")
    reader = Node(name="reader", executable=PyFunc(func=_read, kwargs={"a": [later.stdout_artifact]}))
    wf = Workflow(name="w", root=Node(name="root", children=[reader, later]))
    with pytest.raises(WorkflowError, match=r"root/reader reads the stdout of root/later, which runs later"):
        check_reads(wf)


def test_an_artifact_from_its_own_subtree_is_refused() -> None:
    child = _echo("child")
    reader = Node(name="reader", children=[child])
    reader.executable = PyFunc(func=_read, args=(child.stdout_artifact,))
    wf = Workflow(name="w", root=reader)
    with pytest.raises(WorkflowError, match=r"reads the stdout of reader/child, which is in its own subtree"):
        check_reads(wf)


def test_an_artifact_of_a_node_left_out_by_only_is_refused_before_anything_runs(tmp_path: object) -> None:
    writer = _echo("writer")
    reader = _reader("reader", writer.stdout_artifact)
    wf = Workflow(name="w", root=Node(name="root", children=[writer, reader]))
    check_reads(wf)
    with pytest.raises(WorkflowError, match=r"root/writer, which --only leaves out; select it too$"):
        Engine(wf, dry_run=True, only=lambda p: p.path_str == "root/reader").run()
