"""Dependencies across branches as the engine walks them, on the in-memory executor: a node
starts only once what it waits for has ended, and is skipped, saying why, when that failed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.executors.memory import MemoryExecutor, Script
from tests.helpers import Collect, config
from tests.test_engine_policy import engine_for, task
from wtflow import Command, Engine, Node, Status, Workflow
from wtflow.events import NodeFinished, RunStarted

WAIT = 30.0  # a hang guard


def run(
    tmp_path: Path, root: Node, scripts: dict[str, Any] | None = None, **settings: Any
) -> tuple[int, MemoryExecutor, Collect]:
    engine, executor, events = engine_for(tmp_path, root, scripts, **settings)
    return engine.run(), executor, events


def reasons(events: Collect) -> dict[str, str | None]:
    return {"/".join(e.path): e.reason for e in events.of(NodeFinished) if e.status is Status.SKIPPED}


async def test_a_node_starts_only_once_what_it_waits_for_in_another_branch_ended(tmp_path: Path) -> None:
    build = task("build")
    deploy = task("deploy", after=[build])
    # deploy's branch comes first and is free to start at once: only the wait holds it back.
    root = Node(
        "root", parallel=True, children=[Node("ship", children=[deploy]), Node("make", children=[build])]
    )
    release = asyncio.Event()
    executor = MemoryExecutor({"root/make/build": Script(wait=release)})
    engine = Engine(Workflow(name="deps", root=root), config(tmp_path), executor=executor)
    async with asyncio.timeout(WAIT):
        running = asyncio.create_task(engine.run_async())
        while executor.running == 0:
            await asyncio.sleep(0)
        for _ in range(100):  # give deploy every chance to start too early
            await asyncio.sleep(0)
        assert [r.attempt.path[-1] for r in executor.requests] == ["build"]
        release.set()
        assert await running == 0
    assert [r.attempt.path[-1] for r in executor.requests] == ["build", "deploy"]


def test_waiting_for_a_group_waits_for_its_whole_subtree(tmp_path: Path) -> None:
    tests = Node("tests", parallel=True, children=[task("unit"), task("lint")])
    report = task("report", after=[tests])
    root = Node("root", parallel=True, children=[report, tests])
    code, executor, _ = run(tmp_path, root)
    assert code == 0
    assert [r.attempt.path[-1] for r in executor.requests][-1] == "report"


def test_when_what_it_waits_for_fails_it_is_skipped_saying_why(tmp_path: Path) -> None:
    build = task("build")
    deploy = task("deploy", after=[build])
    notify = task("notify", after=[deploy])
    root = Node("root", parallel=True, children=[
        Node("make", children=[build]),
        Node("ship", children=[deploy, task("smoke")]),  # a sequence: smoke comes after deploy
        notify,
    ])  # fmt: skip
    code, executor, events = run(tmp_path, root, {"root/make/build": Script(exit_code=2)})
    assert code == 1
    # Skipped with the failure that began it, down the chain and along the sequence.
    assert reasons(events) == {
        "root/ship/deploy": "upstream failed: root/make/build",
        "root/ship/smoke": "upstream failed: root/make/build",
        "root/notify": "upstream failed: root/make/build",
    }
    assert [r.attempt.path[-1] for r in executor.requests] == ["build"]
    assert deploy.status is Status.SKIPPED


def test_an_allowed_failure_or_keep_going_lets_the_waiting_node_run(tmp_path: Path) -> None:
    def tree() -> tuple[Node, Node]:
        build = task("build")
        deploy = task("deploy", after=[build])
        return Node("root", parallel=True, children=[deploy, build]), deploy

    root, deploy = tree()
    root.children[1].allow_failure = True
    code, _, _ = run(tmp_path, root, {"root/build": Script(exit_code=1)})
    assert (code, deploy.status) == (0, Status.SUCCEEDED)
    root, deploy = tree()
    code, _, _ = run(tmp_path, root, {"root/build": Script(exit_code=1)}, run__ignore_failure=True)
    assert (code, deploy.status) == (1, Status.SUCCEEDED)


def test_an_always_node_runs_after_what_it_waits_for_even_when_that_failed(tmp_path: Path) -> None:
    build = task("build")
    cleanup = task("cleanup", after=[build], always=True)
    code, executor, _ = run(tmp_path, Node("root", parallel=True, children=[cleanup, build]),
                            {"root/build": Script(exit_code=1)})  # fmt: skip
    assert code == 1
    assert [r.attempt.path[-1] for r in executor.requests] == ["build", "cleanup"]
    assert cleanup.status is Status.SUCCEEDED


def test_an_implied_wait_from_a_read_is_announced_like_after(tmp_path: Path) -> None:
    lint = task("lint")
    count = Node("count", Command(["wc", "-l", lint.stdout_artifact]))
    build = task("build")
    deploy = task("deploy", after=[build])
    code, executor, events = run(tmp_path, Node("root", parallel=True, children=[count, lint, deploy, build]))
    assert code == 0
    order = [r.attempt.path[-1] for r in executor.requests]
    assert order.index("lint") < order.index("count")
    assert order.index("build") < order.index("deploy")
    specs = {"/".join(s.path): s.depends_on for s in events.of(RunStarted)[0].nodes}
    assert specs["root/count"] == ("root/lint",)
    assert specs["root/deploy"] == ("root/build",)
    assert specs["root/lint"] == ()
