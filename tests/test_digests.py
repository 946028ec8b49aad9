"""Node digests (pure): what changes a node's digest, and which part says so."""

from __future__ import annotations

from wtflow import Command, Node, PyFunc, Workflow
from wtflow.digests import Digest, workflow_digests
from wtflow.model import Secret


def step(n: int) -> int:
    return n


def other(n: int) -> int:
    return n + 1


def digests(*children: Node) -> dict[str, Digest]:
    wf = Workflow(name="wf", root=Node("root", children=list(children)))
    return {p.path_str: d for p, d in zip(wf.placed, workflow_digests(wf).values(), strict=True)}


def test_the_part_that_changed_is_named_and_later_nodes_see_it_upstream() -> None:
    before = digests(Node("a", Command("make")), Node("b", Command("test")))
    after = digests(Node("a", Command("make -j2")), Node("b", Command("test")))
    assert after["root/a"].changed(before["root/a"]) == ("executes",)
    assert after["root/b"].changed(before["root/b"]) == ("upstream",)
    assert Digest.parse(str(after["root/a"])) == after["root/a"]


def test_a_function_its_arguments_and_a_secret_value_count_but_the_secret_is_not_kept() -> None:
    base = digests(Node("f", PyFunc(step, args=(1,)), env={"TOKEN": Secret("s3cret")}))["root/f"]
    assert digests(Node("f", PyFunc(step, args=(2,)), env={"TOKEN": Secret("s3cret")}))["root/f"].changed(
        base
    ) == ("executes",)
    assert digests(Node("f", PyFunc(other, args=(1,)), env={"TOKEN": Secret("s3cret")}))["root/f"].changed(
        base
    ) == ("executes",)
    assert digests(Node("f", PyFunc(step, args=(1,)), env={"TOKEN": Secret("other")}))["root/f"].changed(
        base
    ) == ("env",)
    assert "s3cret" not in str(base)


def test_a_parallel_sibling_is_not_upstream_and_a_parents_environment_is_not_its_childs() -> None:
    def tree(env: str) -> dict[str, Digest]:
        wf = Workflow(name="wf", root=Node("root", Command("prep"), env={"X": env}, parallel=True, children=[
            Node("a", Command("a")), Node("b", Command("b"))]))  # fmt: skip
        return {p.path_str: d for p, d in zip(wf.placed, workflow_digests(wf).values(), strict=True)}

    one, two = tree("1"), tree("2")
    assert two["root"].changed(one["root"]) == ("env",)
    assert two["root/a"] == one["root/a"]
    assert two["root/b"] == one["root/b"]
