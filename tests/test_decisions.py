"""What `--dry-run` says of each node, with no run to resume (pure): run, or skip and why."""

from __future__ import annotations

from pathlib import Path

from wtflow import Artifact, Command, Node, PyFunc, Workflow
from wtflow.decisions import PreviousNode, PreviousOutput, PreviousRun, as_json, decide, render
from wtflow.digests import workflow_digests
from wtflow.plan import selection


def total(numbers: Artifact) -> int:
    return sum(numbers.value)


def ci() -> Workflow:
    build = Node("build", Command("uv build"), artifacts=[
        Artifact("wheel", file_path="dist/*.whl"), Artifact("sbom", file_path="sbom.json", optional=True)])  # fmt: skip
    return Workflow(name="ci", root=Node("ci", Command("echo setup"), children=[
        Node("checks", parallel=True, children=[Node("lint", Command("ruff check .")), Node("tests", Command("pytest"))]),
        build,
        Node("sum", PyFunc(total, args=(build.result_artifact,))),
    ]))  # fmt: skip


def explained(wf: Workflow, only: str | None = None) -> str:
    selected = selection(wf, None if only is None else lambda p: p.path_str.startswith(only))
    return render(wf, decide(wf, workflow_digests(wf), selected, None))


def test_without_resume_every_node_runs_and_says_why_with_what_it_runs_and_leaves() -> None:
    assert explained(ci()) == (
        "Workflow: ci\n"
        "- ci  run: not resuming a run\n"
        "    $ echo setup\n"
        "  - checks  [parallel]\n"
        "    - lint  run: not resuming a run\n"
        "        $ ruff check .\n"
        "    - tests  run: not resuming a run\n"
        "        $ pytest\n"
        "  - build  run: not resuming a run\n"
        "      $ uv build\n"
        "      artifacts: wheel (dist/*.whl), sbom (sbom.json, optional)\n"
        "  - sum  run: not resuming a run\n"
        "      call: tests.test_decisions.total(<result of 'build'>)\n"
        "      artifacts: result (result.json)\n"
    )


def test_what_only_leaves_out_is_skipped_with_its_subtree_and_the_way_to_it_runs() -> None:
    assert explained(ci(), only="ci/checks/l") == (
        "Workflow: ci\n"
        "- ci  run: on the way to the selected nodes\n"
        "    $ echo setup\n"
        "  - checks  [parallel]\n"
        "    - lint  run: not resuming a run\n"
        "        $ ruff check .\n"
        "    - tests  skip: not selected\n"
        "  - build  skip: not selected\n"
        "  - sum  skip: not selected\n"
    )


def test_a_false_condition_skips_the_node_and_its_subtree() -> None:
    """The hook `when=` (issue 12) plugs into: a condition known False before the run is
    `skip: condition false`, for the node and everything below it; a callable one is only
    known at its turn, and the dry run says so."""
    wf = ci()
    checks, build = wf.placed[1].node, wf.placed[4].node
    setattr(checks, "when", False)  # noqa: B010 - Node has no when= yet
    setattr(build, "when", lambda run: True)  # noqa: B010
    decisions = {
        wf.placed[i].path_str: str(d) for i, d in decide(wf, workflow_digests(wf), None, None).items()
    }
    assert decisions == {
        "ci": "run: not resuming a run",
        "ci/checks": "skip: condition false",
        "ci/checks/lint": "skip: condition false",
        "ci/checks/tests": "skip: condition false",
        "ci/build": "run: not resuming a run, if its condition holds",
        "ci/sum": "run: not resuming a run",
    }


def test_json_gives_each_decision_and_the_artifacts_each_node_leaves() -> None:
    wf = ci()
    only = selection(wf, lambda p: p.path[-1] in ("lint", "build", "sum"))
    decided = decide(wf, workflow_digests(wf), only, None)
    shown = as_json(wf, {wf.placed[i].path_str: d for i, d in decided.items()})
    assert shown["workflow"] == "ci"
    nodes = {n["path"]: n for n in shown["nodes"]}
    assert list(nodes) == [
        "ci",
        "ci/checks/lint",
        "ci/checks/tests",
        "ci/build",
        "ci/sum",
    ]  # groups decide nothing
    assert nodes["ci/checks/tests"] == {
        "path": "ci/checks/tests",
        "action": "skip",
        "reason": "not selected",
        "artifacts": [],
    }
    assert nodes["ci/build"]["artifacts"] == [
        {"name": "wheel", "kind": "file", "file_path": "dist/*.whl", "optional": False},
        {"name": "sbom", "kind": "file", "file_path": "sbom.json", "optional": True},
    ]
    assert nodes["ci/sum"]["artifacts"] == [{"name": "result", "kind": "result", "file": "result.json"}]


def test_a_node_after_a_changed_one_in_a_sequence_is_upstream_only_if_it_reads_it() -> None:
    from wtflow.decisions import upstream_nodes

    wf = ci()
    assert upstream_nodes(wf, 5) == [4, 0]  # sum: build (whose result it reads), then its parent
    assert upstream_nodes(wf, 2) == [1, 0]  # lint: its ancestors only


def test_a_node_that_declares_an_artifact_its_earlier_run_did_not_keep_runs(tmp_path: Path) -> None:
    """Declarations are not in the digest (they change nothing that runs), so a newly declared
    file would be missing for its readers if the node were reused."""
    out = tmp_path / "stdout"
    out.write_bytes(b"")

    def wf(*declared: Artifact) -> Workflow:
        return Workflow(name="w", root=Node("make", Command("make"), artifacts=list(declared)))

    def decided(workflow: Workflow) -> str:
        digests = workflow_digests(workflow)
        node = PreviousNode("succeeded", str(digests[0]), None, {"stdout": PreviousOutput(out)})
        return str(decide(workflow, digests, None, PreviousRun("3f2a91c0ff", {"make": node}))[0])

    assert decided(wf()).startswith("reuse: succeeded in 3f2a91c0")
    assert decided(wf(Artifact("log", file_path="make.log", optional=True))).startswith("reuse: ")
    assert (
        decided(wf(Artifact("log", file_path="make.log"))) == "run: its artifact log was not kept in 3f2a91c0"
    )
