"""`Node(when=...)`: decided when the node's turn comes, from the run so far and its flags.

The policy on the in-memory executor; results, tracebacks and the record with real processes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.executors.memory import Script
from tests.helpers import Collect, config
from tests.test_engine_policy import engine_for, statuses, task
from wtflow import Command, Engine, Node, PyFunc, Status, Workflow
from wtflow.conditions import RunView
from wtflow.db import tables
from wtflow.events import NodeFinished


def reasons(events: Collect) -> dict[str, str | None]:
    return {e.path[-1]: e.reason for e in events.of(NodeFinished) if e.status is Status.SKIPPED}


def test_a_false_condition_skips_the_node_and_its_subtree(tmp_path: Path) -> None:
    root = Node(name="root", children=[
        task("a", when=False, children=[task("a1")]),
        Node(name="g", when=lambda run: False, children=[task("g1", always=True)]),
        task("b", when=lambda run: 1),  # any true value runs it
    ])  # fmt: skip
    engine, executor, events = engine_for(tmp_path, root)
    assert engine.run() == 0
    assert [r.attempt.path[-1] for r in executor.requests] == ["b"]
    assert reasons(events) == {"a": "condition false", "a1": "condition false", "g": "condition false",
                               "g1": "condition false"}  # fmt: skip


def test_a_condition_is_asked_when_its_turn_comes_with_the_statuses_so_far(tmp_path: Path) -> None:
    seen: list[dict[str, Status]] = []
    lint, tests = task("lint", allow_failure=True), task("tests")

    def after_lint(run: RunView) -> bool:
        seen.append({"lint": run.status(lint), "tests": run.status(tests)})
        return run.status(lint) == "succeeded"

    root = Node(name="root", children=[
        lint,
        task("fix", when=lambda run: run.status(lint) is Status.FAILED),
        task("publish", when=after_lint),
        tests,
    ])  # fmt: skip
    engine, executor, events = engine_for(tmp_path, root, {"root/lint": Script(exit_code=1)})
    assert engine.run() == 0
    assert seen == [{"lint": Status.FAILED, "tests": Status.PENDING}]  # once, after lint, before tests
    assert [r.attempt.path[-1] for r in executor.requests] == ["lint", "fix", "tests"]
    assert reasons(events) == {"publish": "condition false"}


def test_flags_come_from_the_runs_settings(tmp_path: Path) -> None:
    def make() -> Node:
        return Node(name="root", children=[
            task("deploy", when=lambda run: "deploy" in run.flags),
            task("canary", when=lambda run: run.flags >= {"deploy", "canary"}),
        ])  # fmt: skip

    engine, executor, _ = engine_for(tmp_path, make(), run__flags=("deploy",))
    assert engine.run() == 0
    assert [r.attempt.path[-1] for r in executor.requests] == ["deploy"]
    engine, executor, _ = engine_for(tmp_path, make())
    assert engine.run() == 0
    assert executor.requests == []


def _boom(run: RunView) -> bool:
    return 1 / 0 > 0


def test_a_condition_that_raises_fails_its_node_with_the_traceback_in_its_stderr(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    root = Node(name="root", children=[
        Node(name="deploy", executable=Command("echo deploying"), when=_boom,
             children=[Node(name="smoke", executable=Command("true")),
                       Node(name="unlock", executable=Command("echo unlocked"), always=True)]),
        Node(name="notify", executable=Command("true")),
    ])  # fmt: skip
    events = Collect()
    engine = Engine(
        Workflow(name="w", root=root), config(tmp_path, db__url=f"sqlite:///{db}"), listeners=[events]
    )
    assert engine.run() == 1
    assert statuses(root) == {"root": Status.FAILED, "deploy": Status.FAILED, "smoke": Status.SKIPPED,
                              "unlock": Status.SUCCEEDED, "notify": Status.SKIPPED}  # fmt: skip
    assert reasons(events) == {
        "smoke": "upstream failed: root/deploy",
        "notify": "upstream failed: root/deploy",
    }
    stderr = root.children[0].stderr_artifact.text()
    assert stderr.startswith(
        "wtflow: when= of root/deploy raised an exception\nTraceback (most recent call last):\n"
    )
    assert "in _boom\n    return 1 / 0 > 0" in stderr
    assert stderr.endswith("ZeroDivisionError: division by zero\n")
    assert "wtflow/conditions.py" not in stderr  # the user's frames, not wtflow's
    assert root.children[0].stdout_artifact.data == b""  # its command never ran
    with sa.create_engine(f"sqlite:///{db}").connect() as conn:
        [attempt] = conn.execute(sa.select(tables.attempts).where(tables.attempts.c.node_index == 1)).all()
        [stream] = conn.execute(sa.select(tables.artifacts.c.path).where(
            tables.artifacts.c.node_index == 1, tables.artifacts.c.name == "stderr")).all()  # fmt: skip
    assert (attempt.status, attempt.exit_code, attempt.pid) == ("failed", None, None)
    assert Path(stream.path).read_text() == stderr


def _returns_go(go: bool) -> dict[str, bool]:
    return {"go": go}


@pytest.mark.parametrize("go", [True, False])
def test_a_condition_reads_the_result_an_earlier_pyfunc_returned(tmp_path: Path, go: bool) -> None:
    check = Node(name="check", executable=PyFunc(func=_returns_go, args=(go,)))
    deploy = Node(
        name="deploy", executable=Command("echo deploying"), when=lambda run: run.result(check)["go"]
    )
    engine = Engine(Workflow(name="w", root=Node(name="root", children=[check, deploy])), config(tmp_path))
    assert engine.run() == 0
    assert deploy.status is (Status.SUCCEEDED if go else Status.SKIPPED)


def test_a_result_that_is_not_there_fails_the_node_unless_a_default_is_given(tmp_path: Path) -> None:
    first = Node(name="first", executable=Command("echo no result"))
    later = Node(name="later", executable=Command("true"))
    stranger = Node(name="stranger")
    root = Node(name="root", parallel=True, children=[
        Node(name="seq", children=[
            first,
            Node(name="defaulted", executable=Command("true"),
                 when=lambda run: run.result(first, default={"x": 1}) == {"x": 1}),
            Node(name="asked", executable=Command("true"), when=lambda run: run.result(first)),
        ]),
        Node(name="ahead", executable=Command("true"), when=lambda run: run.result(later, default=None) is None),
        Node(name="elsewhere", executable=Command("true"), when=lambda run: run.status(stranger)),
        Node(name="coroutine", executable=Command("true"), when=_async_condition),
        later,
    ])  # fmt: skip
    engine = Engine(Workflow(name="w", root=root), config(tmp_path))
    assert engine.run() == 1
    nodes = {p.node.name: p.node for p in engine.workflow.placed}
    assert {name: nodes[name].status for name in ("defaulted", "asked", "ahead", "elsewhere", "coroutine")} == {
        "defaulted": Status.SUCCEEDED, "asked": Status.FAILED, "ahead": Status.SUCCEEDED,
        "elsewhere": Status.FAILED, "coroutine": Status.FAILED,
    }  # fmt: skip
    assert (
        nodes["asked"]
        .stderr_artifact.text()
        .endswith(
            "wtflow.errors.WtflowError: node 'first' has no result (succeeded): only a PyFunc that ran and "
            "returned a value has one; pass a default, e.g. run.result(node, default=None)\n"
        )
    )
    assert (
        nodes["elsewhere"]
        .stderr_artifact.text()
        .endswith(
            "wtflow.errors.WtflowError: node 'stranger' is not in workflow 'w'; ask about a node of this tree\n"
        )
    )
    assert (
        "returned an awaitable; a condition is a plain function" in nodes["coroutine"].stderr_artifact.text()
    )


async def _async_condition(run: RunView) -> bool:
    await asyncio.sleep(0)
    return True


def test_the_view_changes_nothing(tmp_path: Path) -> None:
    tried: list[str] = []

    def meddle(run: Any) -> bool:
        for attempt in ("flags", "status"):
            try:
                setattr(run, attempt, None)
            except AttributeError:
                tried.append(attempt)
        with pytest.raises(AttributeError):
            run.flags.add("x")
        return True

    root = Node(name="root", children=[task("a", when=meddle)])
    engine, executor, _ = engine_for(tmp_path, root, run__flags=("deploy",))
    assert engine.run() == 0
    assert tried == ["flags", "status"]
    assert len(executor.requests) == 1
