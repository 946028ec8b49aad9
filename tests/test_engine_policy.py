"""The engine's policy on the in-memory executor: failures, skips, retries, limits, cancellation.

No process runs here; the artifact files are real (the engine writes them), the executor is not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.executors.memory import MemoryExecutor, Script
from tests.helpers import Collect, config
from wtflow import Command, Engine, Node, Status, Workflow
from wtflow.consoles.summary import RunReport
from wtflow.events import NodeFinished, NodeStarted, NodeStopping, RunFinished
from wtflow.executors import ExecRequest, ExecResult, Sink, StartNotice

WAIT = 30.0  # a hang guard


def task(name: str, **kw: Any) -> Node:
    return Node(name=name, executable=Command(f"run {name}"), **kw)


def engine_for(
    tmp_path: Path, root: Node, scripts: dict[str, Any] | None = None, **settings: Any
) -> tuple[Engine, MemoryExecutor, Collect]:
    executor, events = MemoryExecutor(scripts), Collect()
    engine = Engine(Workflow(name="policy", root=root), config(tmp_path, **settings), executor=executor,
                    listeners=[events])  # fmt: skip
    return engine, executor, events


def statuses(root: Node) -> dict[str, Status]:
    found, stack = {}, [root]
    while stack:
        node = stack.pop()
        found[node.name] = node.status
        stack.extend(node.children)
    return found


async def until(condition: Any) -> None:
    async with asyncio.timeout(WAIT):
        while not condition():
            await asyncio.sleep(0)


def test_a_failure_skips_later_siblings_and_the_nodes_own_children(tmp_path: Path) -> None:
    root = Node(name="root", children=[task("a"), task("b", children=[task("b1")]), task("c")])
    engine, executor, _ = engine_for(tmp_path, root, {"root/b": Script(exit_code=3)})
    assert engine.run() == 1
    assert statuses(root) == {"root": Status.FAILED, "a": Status.SUCCEEDED, "b": Status.FAILED,
                              "b1": Status.SKIPPED, "c": Status.SKIPPED}  # fmt: skip
    assert root.children[1].retcode == 3
    assert [r.attempt.path[-1] for r in executor.requests] == ["a", "b"]


def test_a_parallel_failure_lets_the_siblings_finish(tmp_path: Path) -> None:
    root = Node(name="root", parallel=True, children=[task("a"), task("b"), task("c")])
    engine, _, _ = engine_for(tmp_path, root, {"root/a": Script(exit_code=1)})
    assert engine.run() == 1
    assert statuses(root)["b"] is statuses(root)["c"] is Status.SUCCEEDED


def test_allow_failure_keeps_the_status_but_not_the_exit_code(tmp_path: Path) -> None:
    root = Node(name="root", children=[task("a", allow_failure=True), task("b")])
    engine, _, events = engine_for(tmp_path, root, {"root/a": Script(exit_code=2)})
    assert engine.run() == 0
    assert statuses(root) == {"root": Status.SUCCEEDED, "a": Status.FAILED, "b": Status.SUCCEEDED}
    assert events.of(RunFinished)[0].exit_code == 0


def test_ignore_failure_runs_everything_and_still_exits_1(tmp_path: Path) -> None:
    root = Node(name="root", children=[task("a", children=[task("a1")]), task("b")])
    engine, executor, _ = engine_for(
        tmp_path, root, {"root/a": Script(exit_code=1)}, run__ignore_failure=True
    )
    assert engine.run() == 1
    assert len(executor.requests) == 3


def test_retries_until_success_count_the_attempts(tmp_path: Path) -> None:
    root = Node(name="root", children=[task("a", retries=3, retry_delay=0)])
    scripts = {"root/a": [Script(exit_code=1), Script(signal=9), Script()]}
    engine, executor, events = engine_for(tmp_path, root, scripts)
    assert engine.run() == 0
    a = root.children[0]
    assert (a.status, a.retcode, a.attempts) == (Status.SUCCEEDED, 0, 3)
    finished = [e for e in events.of(NodeFinished) if e.path[-1] == "a"]
    assert [(e.attempt, e.exit_code, e.will_retry) for e in finished] == [
        (1, 1, True),
        (2, -9, True),
        (3, 0, False),
    ]
    assert [r.env["WTFLOW_ATTEMPT"] for r in executor.requests] == ["1", "2", "3"]
    assert len({r.env["WTFLOW_ARTIFACTS"] for r in executor.requests}) == 3


def test_a_retry_says_when_the_next_attempt_starts_and_waits_until_then(tmp_path: Path) -> None:
    """The delay grows by the backoff (0.05 s, then 0.15 s, each with +-20 % jitter); NodeFinished
    says when the next attempt is due, and it does not start before."""
    root = Node(name="root", children=[task("a", retries=2, retry_delay=0.05, retry_backoff=3)])
    engine, _, events = engine_for(tmp_path, root, {"root/a": Script(exit_code=1)})
    assert engine.run() == 1
    finished = [e for e in events.of(NodeFinished) if e.path[-1] == "a"]
    started = [e for e in events.of(NodeStarted) if e.path[-1] == "a"]
    assert [e.will_retry for e in finished] == [True, True, False]
    assert finished[2].retry_at is None
    waits = [(e.retry_at - e.ended_at).total_seconds() for e in finished[:2]]
    assert 0.04 <= waits[0] <= 0.06
    assert 0.12 <= waits[1] <= 0.18
    for before, after in zip(finished[:2], started[1:], strict=True):
        assert after.started_at >= before.retry_at - timedelta(milliseconds=5)  # timer granularity


def test_retry_on_retries_only_those_exit_codes(tmp_path: Path) -> None:
    root = Node(name="root", children=[task("a", retries=3, retry_delay=0, retry_on=[2])])
    engine, executor, _ = engine_for(tmp_path, root, {"root/a": [Script(exit_code=2), Script(exit_code=3)]})
    assert engine.run() == 1
    assert (root.children[0].retcode, root.children[0].attempts, len(executor.requests)) == (3, 2, 2)


def test_a_time_limit_times_the_node_out_and_stops_it(tmp_path: Path) -> None:
    root = Node(name="root", children=[task("a", timeout=0.01), task("b")])
    engine, executor, _ = engine_for(tmp_path, root, {"root/a": Script(hang=True)})
    assert engine.run() == 1
    assert statuses(root)["a"] is Status.TIMED_OUT
    assert root.children[0].retcode == -15
    assert statuses(root)["b"] is Status.SKIPPED
    assert executor.requests[0].timeout == 0.01


def test_the_runs_time_limit_applies_to_every_node(tmp_path: Path) -> None:
    root = Node(name="root", children=[task("a")])
    engine, _, _ = engine_for(tmp_path, root, {"root/a": Script(hang=True)}, run__timeout=0.01)
    assert engine.run() == 1
    assert statuses(root)["a"] is Status.TIMED_OUT


async def test_max_parallel_caps_the_attempts_running_at_once(tmp_path: Path) -> None:
    go = asyncio.Event()
    root = Node(name="root", parallel=True, children=[task(f"n{i}") for i in range(10)])
    scripts = {f"root/n{i}": Script(wait=go) for i in range(10)}
    engine, executor, _ = engine_for(tmp_path, root, scripts, run__max_parallel=3)
    run = asyncio.create_task(engine.run_async())
    await until(lambda: executor.running == 3)
    for _ in range(20):  # others would have started by now if the cap let them
        await asyncio.sleep(0)
    go.set()
    assert await run == 0
    assert executor.peak == 3
    assert len(executor.requests) == 10


async def test_a_node_waiting_for_a_slot_is_timed_from_when_it_got_one(tmp_path: Path) -> None:
    """Its start, duration and time limit are its own: the wait for a free slot is none of them."""
    go = asyncio.Event()
    root = Node(name="root", parallel=True, children=[task("a"), task("b")])
    engine, executor, events = engine_for(tmp_path, root, {"root/a": Script(wait=go)}, run__max_parallel=1)
    run = asyncio.create_task(engine.run_async())
    await until(lambda: executor.running == 1)
    first = events.of(NodeStarted)[0]
    await until(lambda: datetime.now(UTC) - first.started_at > timedelta(milliseconds=20))
    go.set()
    assert await run == 0
    a_done = next(e for e in events.of(NodeFinished) if e.path[-1] == "a")
    b_start = next(e for e in events.of(NodeStarted) if e.path[-1] == "b")
    b_done = next(e for e in events.of(NodeFinished) if e.path[-1] == "b")
    assert b_start.started_at >= a_done.ended_at
    assert b_done.started_at == b_start.started_at
    assert (b_done.ended_at - b_done.started_at) < (a_done.ended_at - a_done.started_at)


async def test_an_executors_capacity_caps_the_attempts_too(tmp_path: Path) -> None:
    go = asyncio.Event()
    root = Node(name="root", parallel=True, children=[task(f"n{i}") for i in range(6)])
    executor = MemoryExecutor({f"root/n{i}": Script(wait=go) for i in range(6)}, capacity=2)
    engine = Engine(Workflow(name="w", root=root), config(tmp_path, run__max_parallel=8), executor=executor)
    run = asyncio.create_task(engine.run_async())
    await until(lambda: executor.running == 2)
    for _ in range(20):
        await asyncio.sleep(0)
    go.set()
    assert await run == 0
    assert executor.peak == 2


async def test_cancelling_the_run_cancels_every_unfinished_node(tmp_path: Path) -> None:
    root = Node(
        name="root", children=[Node(name="par", parallel=True, children=[task("a"), task("b")]), task("c")]
    )
    engine, executor, events = engine_for(
        tmp_path, root, {"root/par/a": Script(hang=True), "root/par/b": Script(hang=True)}
    )
    run = asyncio.create_task(engine.run_async())
    await until(lambda: executor.running == 2)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert set(statuses(root).values()) == {Status.CANCELLED}
    assert sorted(executor.cancelled) == ["root/par/a", "root/par/b"]
    assert events.of(RunFinished)[0].status is Status.CANCELLED
    assert executor.closed == 1


async def test_cancelling_while_a_node_waits_for_its_retry_leaves_it_cancelled(tmp_path: Path) -> None:
    root = Node(name="root", children=[task("a", retries=1, retry_delay=3600)])
    engine, _, events = engine_for(tmp_path, root, {"root/a": Script(exit_code=1)})
    run = asyncio.create_task(engine.run_async())
    await until(lambda: events.of(NodeFinished))
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert root.children[0].status is Status.CANCELLED
    assert [(e.status, e.exit_code) for e in events.of(NodeFinished) if e.path[-1] == "a"] == [
        (Status.FAILED, 1),
        (Status.CANCELLED, 1),  # the exit code of the attempt that did run
    ]
    report = RunReport()
    for event in events.events:
        report.handle(event)
    assert report.counts() == "1 cancelled"
    assert report.failures(color=False) == []


def test_a_time_limit_says_the_node_is_stopping_before_it_ends(tmp_path: Path) -> None:
    root = Node(name="root", children=[task("a", timeout=0.01)])
    engine, _, events = engine_for(tmp_path, root, {"root/a": Script(hang=True)})
    assert engine.run() == 1
    kinds = [(type(e).__name__, e.status if isinstance(e, NodeFinished) else e.reason)
             for e in events.events if isinstance(e, NodeStopping | NodeFinished) and e.path[-1] == "a"]  # fmt: skip
    assert kinds == [("NodeStopping", "timed out"), ("NodeFinished", Status.TIMED_OUT)]
    (stopping,) = events.of(NodeStopping)
    assert (stopping.index, stopping.attempt) == (1, 1)


async def test_cancelling_says_each_running_node_is_stopping(tmp_path: Path) -> None:
    root = Node(name="root", children=[Node(name="par", parallel=True, children=[task("a"), task("b")]),
                                       task("c")])  # fmt: skip
    engine, executor, events = engine_for(
        tmp_path, root, {"root/par/a": Script(hang=True), "root/par/b": Script(hang=True)}
    )
    run = asyncio.create_task(engine.run_async())
    await until(lambda: executor.running == 2)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert sorted((e.path[-1], e.reason) for e in events.of(NodeStopping)) == [
        ("a", "cancelled"),
        ("b", "cancelled"),
    ]  # and none for c, which never started
    for stopping in events.of(NodeStopping):
        finished = next(e for e in events.of(NodeFinished) if e.index == stopping.index)
        assert events.events.index(stopping) < events.events.index(finished)


class WithoutStoppingNotices(MemoryExecutor):
    """An executor written before on_stopping: its run() does not take it."""

    async def run(  # type: ignore[override]
        self, request: ExecRequest, *, sinks: Mapping[str, Sink], on_start: Callable[[StartNotice], None]
    ) -> ExecResult:
        return await super().run(request, sinks=sinks, on_start=on_start)


def test_an_executor_that_does_not_announce_stopping_still_runs(tmp_path: Path) -> None:
    root = Node(name="root", children=[task("a", timeout=0.01)])
    executor, events = WithoutStoppingNotices({"root/a": Script(hang=True)}), Collect()
    engine = Engine(Workflow(name="w", root=root), config(tmp_path), executor=executor, listeners=[events])
    assert engine.run() == 1
    assert root.children[0].status is Status.TIMED_OUT
    assert events.of(NodeStopping) == []


def test_a_program_that_cannot_start_is_an_attempt_with_exit_127_and_its_reason(tmp_path: Path) -> None:
    root = Node(name="root", children=[task("a")])
    engine, _, events = engine_for(tmp_path, root, {"root/a": Script(error="cannot start 'x': No such file")})
    assert engine.run() == 1
    a = root.children[0]
    assert (a.status, a.retcode, a.attempts) == (Status.FAILED, 127, 1)
    started = events.of(NodeStarted)
    assert [(e.path, e.pid) for e in started] == [(("root", "a"), None)]
    assert a.stderr_artifact.data == b"wtflow: cannot start 'x': No such file\n"


def test_a_lost_worker_fails_the_node_with_no_exit_code(tmp_path: Path) -> None:
    root = Node(name="root", children=[task("a")])
    engine, _, _ = engine_for(tmp_path, root, {"root/a": Script(error="worker lost", lost=True)})
    assert engine.run() == 1
    assert (root.children[0].status, root.children[0].retcode) == (Status.FAILED, None)


def test_the_request_carries_only_the_environment_changes(tmp_path: Path) -> None:
    root = Node(name="root", children=[task("a", env={"MINE": "1"}, cwd=tmp_path)])
    engine, executor, _ = engine_for(tmp_path, root)
    assert engine.run() == 0
    (request,) = executor.requests
    assert set(request.env) == {"MINE", "WTFLOW_RUN_ID", "WTFLOW_NODE", "WTFLOW_ATTEMPT", "WTFLOW_ARTIFACTS"}
    assert request.env["WTFLOW_NODE"] == "root/a"
    assert request.env["WTFLOW_RUN_ID"] == engine.run_id == request.attempt.run_id
    assert Path(request.env["WTFLOW_ARTIFACTS"]).is_dir()  # made before the process starts
    assert request.cwd == tmp_path


def test_the_stream_files_are_there_before_the_process_starts(tmp_path: Path) -> None:
    """A process may read its own output from its first line (`$WTFLOW_ARTIFACTS/stdout`):
    making the files as it started instead, to take two inodes off the path of a sequence,
    left a window in which it found none."""
    seen: dict[str, bool] = {}

    class Starting(MemoryExecutor):
        async def run(self, request: ExecRequest, *, sinks: Mapping[str, Sink],
                      on_start: Callable[[StartNotice], None], on_stopping: Any = None) -> ExecResult:  # fmt: skip
            folder = Path(request.env["WTFLOW_ARTIFACTS"])
            seen["stdout"], seen["stderr"] = (folder / "stdout").is_file(), (folder / "stderr").is_file()
            return await super().run(request, sinks=sinks, on_start=on_start, on_stopping=on_stopping)

    root = Node(name="root", children=[task("a")])
    engine = Engine(Workflow(name="policy", root=root), config(tmp_path), executor=Starting())
    assert engine.run() == 0
    assert seen == {"stdout": True, "stderr": True}
    assert root.children[0].stdout_artifact.data == b""  # a silent node keeps its empty files


def test_output_goes_to_the_artifacts_and_to_the_listeners(tmp_path: Path) -> None:
    root = Node(name="root", children=[task("a")])
    engine, _, events = engine_for(tmp_path, root, {"root/a": Script(stdout=[b"x", b"y"], stderr=[b"e"])})
    assert engine.run() == 0
    a = root.children[0]
    assert (a.stdout_artifact.data, a.stderr_artifact.data) == (b"xy", b"e")
    (finished,) = [e for e in events.of(NodeFinished) if e.path[-1] == "a"]
    assert finished.output_order == (("stdout", 2), ("stderr", 1))


class Breaks:
    wants_output = False

    def __init__(self) -> None:
        self.closed = 0

    def handle(self, event: object) -> None:
        raise RuntimeError("listener bug")

    def close(self) -> list[str]:
        self.closed += 1
        return ["could not keep something"]


def test_a_listener_that_raises_is_dropped_and_each_listener_is_closed_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = Breaks()
    engine = Engine(Workflow(name="w", root=task("a")), config(tmp_path), executor=MemoryExecutor(),
                    listeners=[broken])  # fmt: skip
    assert engine.run() == 0
    assert broken.closed == 1
    err = capsys.readouterr().err
    assert "wtflow: warning: Breaks stopped: listener bug" in err
    assert "wtflow: warning: could not keep something" in err


def test_the_same_engine_runs_twice_with_separate_ids_and_folders(tmp_path: Path) -> None:
    root = Node(name="root", children=[task("a")])
    engine, executor, events = engine_for(tmp_path, root, {"root/a": Script(exit_code=1)})
    assert engine.run() == 1
    first_id, first_dir, first_file = engine.run_id, engine.run_dir, root.children[0].stdout_artifact.path
    executor.scripts = {}
    assert engine.run() == 0
    assert engine.run_id != first_id
    assert engine.run_dir != first_dir
    assert root.children[0].status is Status.SUCCEEDED
    assert root.children[0].stdout_artifact.path != first_file  # the latest run's file
    assert [e.run_id for e in events.of(RunFinished)] == [first_id, engine.run_id]
    assert executor.closed == 2
