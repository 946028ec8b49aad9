"""Cleanup that always runs (`always=True`) and the run's deadline."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.executors.memory import Script
from tests.helpers import gone, wait_for
from tests.test_engine_policy import engine_for, statuses, task, until
from tests.test_subtree import reasons
from wtflow import Node, Status


def test_an_always_node_runs_after_a_failure_and_the_others_are_skipped(tmp_path: Path) -> None:
    root = Node(name="root", children=[task("a"), task("b"), task("cleanup", always=True)])
    engine, executor, events = engine_for(tmp_path, root, {"root/a": Script(exit_code=1)})
    assert engine.run() == 1
    assert statuses(root) == {"root": Status.FAILED, "a": Status.FAILED, "b": Status.SKIPPED,
                              "cleanup": Status.SUCCEEDED}  # fmt: skip
    assert [r.attempt.path[-1] for r in executor.requests] == ["a", "cleanup"]
    assert reasons(events) == {"b": "upstream failed: root/a"}


def test_an_always_child_runs_when_its_parents_own_executable_failed(tmp_path: Path) -> None:
    root = task("setup", children=[task("work"), task("teardown", always=True)])
    engine, executor, _ = engine_for(tmp_path, root, {"setup": Script(exit_code=1)})
    assert engine.run() == 1
    assert [r.attempt.path[-1] for r in executor.requests] == ["setup", "teardown"]


def test_an_always_nodes_own_failure_counts(tmp_path: Path) -> None:
    root = Node(name="root", children=[task("a"), task("cleanup", always=True)])
    engine, _, _ = engine_for(tmp_path, root, {"root/cleanup": Script(exit_code=2)})
    assert engine.run() == 1


def test_the_deadline_stops_what_runs_skips_the_rest_and_runs_the_cleanup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = Node(name="work", parallel=True, children=[task("hangs"), task("also")])
    root = Node(name="root", children=[work, task("later"), task("cleanup", always=True, timeout=5)])
    scripts = {"root/work/hangs": Script(hang=True), "root/work/also": Script(hang=True)}
    engine, executor, events = engine_for(tmp_path, root, scripts, run__deadline=0.05)
    assert engine.run() == 1
    assert statuses(root) == {"root": Status.TIMED_OUT, "work": Status.TIMED_OUT, "hangs": Status.TIMED_OUT,
                              "also": Status.TIMED_OUT, "later": Status.SKIPPED,
                              "cleanup": Status.SUCCEEDED}  # fmt: skip
    assert reasons(events) == {"later": "deadline"}
    assert executor.requests[-1].timeout == 5  # the cleanup is bounded by its own limit only
    err = capsys.readouterr().err
    assert "wtflow: policy: the run's deadline of 0.05s (run.deadline) passed; " in err


def test_a_groups_budget_still_runs_the_cleanup_inside_it(tmp_path: Path) -> None:
    group = Node(name="g", timeout=0.05, children=[task("hangs"), task("next"), task("cleanup", always=True)])
    engine, _, events = engine_for(tmp_path, group, {"g/hangs": Script(hang=True)})
    assert engine.run() == 1
    assert statuses(group) == {"g": Status.TIMED_OUT, "hangs": Status.TIMED_OUT, "next": Status.SKIPPED,
                               "cleanup": Status.SUCCEEDED}  # fmt: skip
    assert reasons(events) == {"next": "timed out: g"}


def test_fail_fast_still_runs_the_cleanup_of_the_group(tmp_path: Path) -> None:
    group = Node(name="g", parallel=True, fail_fast=True, max_parallel=1,
                 children=[task("fails"), task("other"), task("cleanup", always=True)])  # fmt: skip
    engine, _, _ = engine_for(tmp_path, group, {"g/fails": Script(exit_code=1)})
    assert engine.run() == 1
    assert statuses(group)["cleanup"] is Status.SUCCEEDED
    assert statuses(group)["other"] is Status.SKIPPED


async def test_an_interrupted_run_still_runs_its_cleanup_then_ends_cancelled(tmp_path: Path) -> None:
    root = Node(name="root", children=[task("hangs"), task("later"), task("cleanup", always=True)])
    engine, executor, _ = engine_for(tmp_path, root, {"root/hangs": Script(hang=True)})
    run = asyncio.create_task(engine.run_async())
    await until(lambda: executor.running == 1)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert statuses(root) == {"root": Status.CANCELLED, "hangs": Status.CANCELLED, "later": Status.CANCELLED,
                              "cleanup": Status.SUCCEEDED}  # fmt: skip


CLEANUP = """
import sys, wtflow
room = sys.argv[1]
work = wtflow.Node(name="work", executable=wtflow.Command(f"echo $$ > {room}/work; exec sleep 60"))
cleanup = wtflow.Node(name="cleanup", always=True,
                      executable=wtflow.Command(f"echo $$ > {room}/cleanup; exec sleep {sys.argv[2]}"))
engine = wtflow.Engine(wtflow.Workflow(name="always", root=wtflow.Node(name="top", children=[work, cleanup])))
code = engine.run()
print(code, work.status, cleanup.status, file=sys.stderr)
raise SystemExit(code)
"""


def _start(tmp_path: Path, cleanup_seconds: str) -> tuple[subprocess.Popen[bytes], Path]:
    room = tmp_path / "room"
    room.mkdir()
    env = {**os.environ, "WTFLOW_DB_URL": "", "WTFLOW_CONSOLE": "quiet", "WTFLOW_STATE_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-c", CLEANUP, str(room), cleanup_seconds], env=env,
                            stderr=subprocess.PIPE)  # fmt: skip
    wait_for(lambda: (room / "work").exists() and (room / "work").read_text().strip(), "work to start")
    return proc, room


def test_ctrl_c_runs_the_cleanup_and_returns_130(tmp_path: Path) -> None:
    proc, room = _start(tmp_path, "0")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert (proc.returncode, err.decode().split()[-3:]) == (130, ["130", "cancelled", "succeeded"])
    assert gone(int((room / "work").read_text()))


def test_a_second_ctrl_c_ends_the_cleanup_too(tmp_path: Path) -> None:
    proc, room = _start(tmp_path, "60")
    proc.send_signal(signal.SIGINT)
    wait_for(
        lambda: (room / "cleanup").exists() and (room / "cleanup").read_text().strip(), "cleanup to start"
    )
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert gone(int((room / "cleanup").read_text()))


def test_skip_reasons_are_recorded_and_shown_by_show(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from wtflow.db import tables

    db = tmp_path / "r.db"
    root = Node(name="root", children=[task("a"), task("b")])
    engine, _, _ = engine_for(tmp_path, root, {"root/a": Script(exit_code=1)}, db__url=f"sqlite:///{db}")
    assert engine.run() == 1
    with sa.create_engine(f"sqlite:///{db}").connect() as conn:
        rows = dict(conn.execute(sa.select(tables.nodes.c.name, tables.nodes.c.reason)).all())
    assert rows == {"root": None, "a": None, "b": "upstream failed: root/a"}
