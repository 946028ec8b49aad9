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


def test_the_part_that_changed_is_named_and_a_reader_sees_it_but_a_later_sibling_does_not() -> None:
    """Order alone is not a dependency (as make's order-only prerequisites, doit's task_dep): a
    node after a changed one in a sequence keeps its digest unless it reads that node's output."""

    def wf(cmd: str) -> dict[str, Digest]:
        a = Node("a", Command(cmd))
        return digests(a, Node("b", Command("test")), Node("c", Command(["wc", "-l", a.stdout_artifact])))

    before, after = wf("make"), wf("make -j2")
    assert after["root/a"].changed(before["root/a"]) == ("executes",)
    assert after["root/b"] == before["root/b"]
    assert after["root/c"].changed(before["root/c"]) == ("reads",)
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


def test_a_parents_environment_and_cwd_are_its_childrens_and_its_command_is_upstream() -> None:
    """Regression test: env merges downward, so a child runs with its group's value; a changed
    value on the group kept the child's digest and --resume reused what had run with the old one."""

    def tree(env: str, cwd: str = "src", prep: str = "prep") -> dict[str, Digest]:
        wf = Workflow(name="wf", root=Node("root", Command(prep), env={"X": env}, cwd=cwd, parallel=True, children=[
            Node("a", Command("a")), Node("b", Command("b"), env={"X": "own"})]))  # fmt: skip
        return {p.path_str: d for p, d in zip(wf.placed, workflow_digests(wf).values(), strict=True)}

    one = tree("1")
    assert tree("2")["root"].changed(one["root"]) == ("env",)
    assert tree("2")["root/a"].changed(one["root/a"]) == ("env",)
    assert tree("2")["root/b"] == one["root/b"]  # its own value wins: it never sees the group's
    assert tree("1", cwd="lib")["root/b"].changed(one["root/b"]) == ("cwd",)
    assert tree("1", prep="prep -v")["root/a"].changed(one["root/a"]) == ("upstream",)
