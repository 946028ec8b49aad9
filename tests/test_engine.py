from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from pathlib import Path

import pytest

from tests.helpers import Collect, config, gone, py, wf
from tests.procs import argv
from wtflow import Command, Engine, Node, PyFunc, Status, UsageError, Workflow
from wtflow.events import (
    Event,
    NodeFinished,
    NodeStarted,
    NodeStopping,
    OutputReceived,
    RunFinished,
    RunStarted,
)

RENDEZVOUS = (
    "import pathlib, sys, time\n"
    "room, me, n = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])\n"
    "room.mkdir(exist_ok=True); (room / me).touch()\n"
    "while len(list(room.iterdir())) < n: time.sleep(0.01)\n"
)


def rendezvous(room: Path, me: str, n: int) -> Command:
    return Command([sys.executable, "-c", RENDEZVOUS, str(room), me, str(n)])


def test_sequence_runs_a_node_before_its_children_in_order(tmp_path: Path) -> None:
    log = tmp_path / "order"
    root = Node(
        name="root",
        executable=Command(f"echo root >> {log}"),
        children=[Node(name=n, executable=Command(f"echo {n} >> {log}")) for n in ("a", "b", "c")],
    )
    assert Engine(Workflow(name="seq", root=root), config(tmp_path)).run() == 0
    assert log.read_text().split() == ["root", "a", "b", "c"]
    assert [n.status for n in root.children] == [Status.SUCCEEDED] * 3
    assert root.retcode == 0


async def test_parallel_children_overlap(tmp_path: Path) -> None:
    """Run one after another, the first child would wait forever for the others and time out."""
    room = tmp_path / "room"
    children = [Node(name=c, executable=rendezvous(room, c, 4)) for c in "abcd"]
    engine = Engine(wf(*children, parallel=True), config(tmp_path))
    async with asyncio.timeout(30):
        assert await engine.run_async() == 0


def test_max_parallel_caps_processes_running_at_once(tmp_path: Path) -> None:
    events = Collect()
    children = [
        Node(name=f"n{i}", executable=Command(py("import time; time.sleep(0.05)"))) for i in range(12)
    ]
    engine = Engine(wf(*children, parallel=True), config(tmp_path, run__max_parallel=3), listeners=[events])
    assert engine.run() == 0
    running = peak = 0
    for e in events.events:
        if isinstance(e, NodeStarted):
            running += 1
            peak = max(peak, running)
        elif isinstance(e, NodeFinished) and e.attempt:
            running -= 1
    assert peak == 3


def test_sequential_failure_skips_later_siblings_and_fails_the_run(tmp_path: Path) -> None:
    a = Node(name="a", executable=Command("exit 3"))
    b = Node(name="b", executable=Command("echo b"), children=[Node(name="b1", executable=Command("true"))])
    engine = Engine(wf(a, b), config(tmp_path))
    assert engine.run() == 1
    assert (a.status, a.retcode) == (Status.FAILED, 3)
    assert (b.status, b.retcode) == (Status.SKIPPED, None)
    assert b.children[0].status == Status.SKIPPED
    assert engine.workflow.root.status == Status.FAILED


def test_failing_executable_skips_its_own_children(tmp_path: Path) -> None:
    child = Node(name="child", executable=Command("true"))
    engine = Engine(wf(Node(name="parent", executable=Command("false"), children=[child])), config(tmp_path))
    assert engine.run() == 1
    assert child.status == Status.SKIPPED


def test_parallel_failure_fails_parent_but_siblings_finish(tmp_path: Path) -> None:
    ok = Node(name="ok", executable=Command("echo fine"))
    bad = Node(name="bad", executable=Command("exit 1"))
    group = Node(name="group", parallel=True, children=[ok, bad])
    after = Node(name="after", executable=Command("true"))
    engine = Engine(wf(group, after), config(tmp_path))
    assert engine.run() == 1
    assert ok.status == Status.SUCCEEDED
    assert ok.stdout_artifact.data == b"fine\n"
    assert bad.status == Status.FAILED
    assert group.status == Status.FAILED
    assert after.status == Status.SKIPPED


def test_missing_command_fails_with_its_message_in_stderr(tmp_path: Path) -> None:
    node = Node(name="n", executable=Command("command-not-exist"))
    assert Engine(wf(node), config(tmp_path)).run() == 1
    assert node.retcode == 127
    assert b"not found" in node.stderr_artifact.data


def test_missing_program_in_argv_is_reported_in_stderr(tmp_path: Path) -> None:
    node = Node(name="n", executable=Command(["/no/such/program", "x"]))
    assert Engine(wf(node), config(tmp_path)).run() == 1
    assert node.retcode == 127
    assert b"/no/such/program" in node.stderr_artifact.data


@pytest.mark.parametrize("source", ["config", "env", "ini"])
def test_ignore_failure_keeps_going_but_still_exits_1(tmp_path: Path, source: str) -> None:
    from wtflow import Config

    base = {"db.url": "", "storage.state_dir": tmp_path / "s", "run.console": "quiet"}
    if source == "config":
        cfg = Config.load(environ={}, overrides={**base, "run.ignore_failure": True})
    elif source == "env":
        cfg = Config.load(environ={"WTFLOW_IGNORE_FAILURE": "true"}, overrides=base)
    else:
        ini = tmp_path / "c.ini"
        ini.write_text("[run]\nignore_failure = 1\n")
        cfg = Config.load(ini=ini, environ={}, overrides=base)
    a = Node(name="a", executable=Command("command-not-exist"))
    b = Node(name="b", executable=Command("echo run anyway"))
    assert Engine(wf(a, b), cfg).run() == 1
    assert b.stdout_artifact.data == b"run anyway\n"


def test_allow_failure_is_recorded_but_does_not_fail_the_run(tmp_path: Path) -> None:
    optional = Node(name="optional", executable=Command("exit 4"), allow_failure=True)
    after = Node(name="after", executable=Command("echo after"))
    assert Engine(wf(optional, after), config(tmp_path)).run() == 0
    assert (optional.status, optional.retcode) == (Status.FAILED, 4)
    assert after.status == Status.SUCCEEDED


def test_allow_failure_group_absorbs_its_childrens_failures(tmp_path: Path) -> None:
    group = Node(name="group", allow_failure=True, children=[Node(name="x", executable=Command("false"))])
    assert Engine(wf(group, Node(name="y", executable=Command("true"))), config(tmp_path)).run() == 0
    assert group.status == Status.FAILED


def test_retries_keep_every_attempts_output_apart(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    script = f"n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; echo try $n; [ $n -ge 3 ]"
    node = Node(name="flaky", executable=Command(script), retries=3, retry_delay=0.01)
    events = Collect()
    engine = Engine(wf(node), config(tmp_path), listeners=[events])
    assert engine.run() == 0
    assert (node.status, node.attempts) == (Status.SUCCEEDED, 3)
    assert engine.run_dir is not None
    folder = engine.run_dir / "root" / "flaky"
    assert (folder / "stdout").read_bytes() == b"try 1\n"
    assert (folder / "attempt-2" / "stdout").read_bytes() == b"try 2\n"
    assert (folder / "attempt-3" / "stdout").read_bytes() == b"try 3\n"
    assert node.stdout_artifact.data == b"try 3\n"
    finished = [e for e in events.of(NodeFinished) if e.path == ("root", "flaky")]
    assert [(e.attempt, e.status, e.will_retry) for e in finished] == [
        (1, Status.FAILED, True),
        (2, Status.FAILED, True),
        (3, Status.SUCCEEDED, False),
    ]


def test_retry_on_limits_retries_to_given_exit_codes(tmp_path: Path) -> None:
    node = Node(name="n", executable=Command("exit 2"), retries=3, retry_delay=0, retry_on=[75])
    assert Engine(wf(node), config(tmp_path)).run() == 1
    assert node.attempts == 1


class Stopping(Collect):
    """Keeps the events, and notes at each NodeStopping whether the node's process still ran."""

    def __init__(self) -> None:
        super().__init__()
        self.pids: dict[int, int] = {}
        self.alive_at_stopping: list[bool] = []

    def handle(self, event: Event) -> None:
        super().handle(event)
        if isinstance(event, NodeStarted) and event.pid is not None:
            self.pids[event.index] = event.pid
        elif isinstance(event, NodeStopping):
            self.alive_at_stopping.append(not gone(self.pids[event.index]))


def test_a_time_limit_says_stopping_while_the_process_still_runs(tmp_path: Path) -> None:
    """Regression test: the live tree showed `running` through the kill grace of a timed-out node."""
    node = Node(name="stubborn", executable=Command(argv("stubborn.py", tmp_path / "pids")), timeout=0.5)
    events = Stopping()
    assert Engine(wf(node), config(tmp_path, run__kill_grace=0.2), listeners=[events]).run() == 1
    (stopping,) = events.of(NodeStopping)
    assert (stopping.path, stopping.attempt, stopping.reason) == (("root", "stubborn"), 1, "timed out")
    assert events.alive_at_stopping == [True]  # before SIGTERM, let alone the SIGKILL after the grace
    finished = next(e for e in events.of(NodeFinished) if e.index == stopping.index)
    assert events.events.index(stopping) < events.events.index(finished)
    assert (finished.status, finished.exit_code) == (Status.TIMED_OUT, -9)
    assert finished.started_at <= stopping.at <= finished.ended_at


async def test_cancelling_a_running_node_says_stopping_then_cancelled(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    node = Node(name="stubborn", executable=Command(argv("stubborn.py", pids)))
    events = Stopping()
    run = asyncio.create_task(
        Engine(wf(node), config(tmp_path, run__kill_grace=0.2), listeners=[events]).run_async()
    )
    async with asyncio.timeout(30):  # a hang guard
        while not pids.exists():
            await asyncio.sleep(0.01)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert [(e.reason, e.attempt) for e in events.of(NodeStopping)] == [("cancelled", 1)]
    assert events.alive_at_stopping == [True]
    assert [e.status for e in events.of(NodeFinished) if e.path == ("root", "stubborn")] == [Status.CANCELLED]
    assert all(gone(pid) for pid in map(int, pids.read_text().split()))


def test_time_limit_kills_grandchildren(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    cmd = f"sleep 100 & echo $! > {pids}; echo $$ >> {pids}; wait"
    node = Node(name="slow", executable=Command(cmd, timeout=0.5))
    assert Engine(wf(node), config(tmp_path)).run() == 1
    assert node.status == Status.TIMED_OUT
    assert node.retcode == -15  # the signal that ended it
    for pid in map(int, pids.read_text().split()):
        assert gone(pid), pid


def test_time_limit_ends_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    code = f"import signal, time, pathlib; signal.signal(signal.SIGTERM, signal.SIG_IGN); pathlib.Path({str(ready)!r}).write_text(str(__import__('os').getpid())); time.sleep(100)"
    node = Node(name="stubborn", executable=Command([sys.executable, "-c", code]), timeout=1)
    assert Engine(wf(node), config(tmp_path, run__kill_grace=0.2)).run() == 1
    assert node.status == Status.TIMED_OUT
    assert node.retcode == -9  # SIGTERM was ignored
    assert gone(int(ready.read_text()))


@pytest.mark.parametrize("limit", ["group", "deadline"])
def test_a_time_limit_from_above_records_the_signal_that_ended_the_node(tmp_path: Path, limit: str) -> None:
    """A group's `timeout` and the run's deadline end a node as its own time limit does: timed
    out, with -15, or -9 for one that ignored SIGTERM (the record, `show` and JUnit say it)."""
    ready = tmp_path / "ready"
    stubborn = f"import signal, time, pathlib; signal.signal(signal.SIGTERM, signal.SIG_IGN); pathlib.Path({str(ready)!r}).touch(); time.sleep(100)"
    plain = Node(name="plain", executable=Command("sleep 100"))
    deaf = Node(name="deaf", executable=Command([sys.executable, "-c", stubborn]))
    group = Node(name="g", parallel=True, children=[plain, deaf], timeout=1.5 if limit == "group" else None)
    events = Collect()
    settings = {"run__deadline": 1.5} if limit == "deadline" else {}
    engine = Engine(wf(group), config(tmp_path, run__kill_grace=0.2, **settings), listeners=[events])
    assert engine.run() == 1
    assert ready.exists()
    assert (plain.status, plain.retcode) == (Status.TIMED_OUT, -15)
    assert (deaf.status, deaf.retcode) == (Status.TIMED_OUT, -9)
    finished = {e.path[-1]: e.exit_code for e in events.of(NodeFinished)}
    assert (finished["plain"], finished["deaf"]) == (-15, -9)


def test_node_ends_when_its_process_ends_and_leftovers_are_stopped(tmp_path: Path) -> None:
    """A command that leaves `sleep 100 &` holding stdout must not keep the node running."""
    pids = tmp_path / "pids"
    node = Node(name="n", executable=Command(f"sleep 100 & echo $! > {pids}; echo done"))
    assert Engine(wf(node), config(tmp_path)).run() == 0
    assert node.stdout_artifact.data == b"done\n"
    assert gone(int(pids.read_text()))


def test_stdin_is_dev_null(tmp_path: Path) -> None:
    node = Node(name="reader", executable=Command("cat; echo read-all"))
    assert Engine(wf(node), config(tmp_path)).run() == 0
    assert node.stdout_artifact.data == b"read-all\n"


def test_env_and_cwd_reach_the_process(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    node = Node(
        name="n", executable=Command('echo "$GREETING $(pwd)"'), env={"GREETING": "hi"}, cwd=tmp_path / "work"
    )
    assert Engine(wf(node), config(tmp_path)).run() == 0
    assert node.stdout_artifact.data == f"hi {tmp_path / 'work'}\n".encode()


def test_output_bytes_are_kept_exactly_including_binary_and_a_huge_line(tmp_path: Path) -> None:
    binary = Node(
        name="binary", executable=Command(py("import sys; sys.stdout.buffer.write(bytes(range(256)) * 4)"))
    )
    huge = Node(name="huge", executable=Command(py("import sys; sys.stdout.write('x' * 10_000_000)")))
    assert Engine(wf(binary, huge), config(tmp_path)).run() == 0
    assert binary.stdout_artifact.data == bytes(range(256)) * 4
    assert huge.stdout_artifact.path.stat().st_size == 10_000_000


def test_events_tell_the_whole_run(tmp_path: Path) -> None:
    events = Collect()
    node = Node(name="n", executable=Command("echo hello; echo oops >&2; exit 5"))
    engine = Engine(wf(node), config(tmp_path), listeners=[events])
    assert engine.run() == 1
    assert isinstance(events.events[0], RunStarted)
    assert isinstance(events.events[-1], RunFinished)
    assert events.events[-1].exit_code == 1
    out = b"".join(e.data for e in events.of(OutputReceived) if e.stream == "stdout")
    err = b"".join(e.data for e in events.of(OutputReceived) if e.stream == "stderr")
    assert (out, err) == (b"hello\n", b"oops\n")
    finished = [e for e in events.of(NodeFinished) if e.path == ("root", "n")]
    assert [(e.status, e.exit_code, e.stdout_size, e.stderr_size) for e in finished] == [
        (Status.FAILED, 5, 6, 5)
    ]


def _print_and_fail() -> None:
    print("before")
    print("to stderr", file=sys.stderr)
    raise RuntimeError("boom")


async def _async_work(n: int) -> None:
    await asyncio.sleep(0)
    print(f"async {n}")


def test_pyfunc_output_and_exception_land_in_artifacts(tmp_path: Path) -> None:
    node = Node(name="f", executable=PyFunc(func=_print_and_fail))
    assert Engine(wf(node), config(tmp_path)).run() == 1
    assert node.retcode == 1
    assert node.stdout_artifact.data == b"before\n"
    err = node.stderr_artifact.data
    assert err.startswith(b"to stderr\nTraceback")
    assert b"RuntimeError: boom" in err


def test_pyfunc_async_function_and_closure_and_kwargs(tmp_path: Path) -> None:
    seen = []

    def closure(*, who: str) -> None:
        seen.append(who)  # in the child: the parent's list is not touched
        print(f"hello {who} from {os.getpid() != PARENT}")

    PARENT = os.getpid()
    a = Node(name="a", executable=PyFunc(func=_async_work, args=(7,)))
    b = Node(name="b", executable=PyFunc(func=closure, kwargs={"who": "you"}))
    assert Engine(wf(a, b), config(tmp_path)).run() == 0
    assert a.stdout_artifact.data == b"async 7\n"
    assert b.stdout_artifact.data == b"hello you from True\n"
    assert seen == []


def test_pyfunc_system_exit_code_is_the_exit_code(tmp_path: Path) -> None:
    node = Node(name="f", executable=PyFunc(func=sys.exit, args=(9,)))
    assert Engine(wf(node), config(tmp_path)).run() == 1
    assert node.retcode == 9


def test_pyfunc_reads_an_earlier_nodes_artifact(tmp_path: Path) -> None:
    n1 = Node(name="n1", executable=Command("echo 'Hello'"))

    def consume(artifact: object) -> None:
        print(f"data from child1: {artifact.data.decode().strip()}")  # type: ignore[attr-defined]

    n2 = Node(name="n2", executable=PyFunc(func=consume, args=(n1.stdout_artifact,)))
    assert Engine(wf(n1, n2), config(tmp_path)).run() == 0
    assert n2.stdout_artifact.data == b"data from child1: Hello\n"


def test_run_inside_a_running_loop_says_use_run_async(tmp_path: Path) -> None:
    async def inside() -> None:
        Engine(wf(Node(name="n", executable=Command("true"))), config(tmp_path)).run()

    with pytest.raises(UsageError, match=r"use await engine.run_async\(\)"):
        asyncio.run(inside())


def test_dry_run_prints_the_tree_and_runs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "ran"
    root = Node(
        name="Root Node",
        children=[
            Node(name="Node 1", executable=Command(f"echo 'Hello' > {marker}")),
            Node(name="Node 2", executable=PyFunc(func=_print_and_fail)),
        ],
    )
    assert Engine(Workflow(name="test dry run", root=root), config(tmp_path), dry_run=True).run() == 0
    assert capsys.readouterr().out == (
        "Workflow: test dry run\n"
        "- Root Node\n"
        "  - Node 1  run: not resuming a run\n"
        f"      $ echo 'Hello' > {marker}\n"
        "  - Node 2  run: not resuming a run\n"
        "      call: tests.test_engine._print_and_fail()\n"
        "      artifacts: result (result.json)\n"
    )
    assert not marker.exists()


def test_artifacts_layout_is_run_then_tree_path(tmp_path: Path) -> None:
    leaf = Node(name="leaf", executable=Command("echo leaf"))
    engine = Engine(Workflow(name="My Flow!", root=Node(name="top", children=[leaf])), config(tmp_path))
    assert engine.run() == 0
    assert engine.run_dir is not None
    assert engine.run_dir.parent == tmp_path / "state" / "artifacts" / "My-Flow"
    assert engine.run_dir.name.endswith(engine.run_id[:8])
    assert (engine.run_dir / "top" / "leaf" / "stdout").read_bytes() == b"leaf\n"
    assert (engine.run_dir.parent / "latest").resolve() == engine.run_dir.resolve()


# `a` waits (up to 10 s) until the folder and files of the node after it exist, then exits so.
WAITS_FOR_NEXT = (
    'for i in $(seq 1000); do [ -e "$WTFLOW_ARTIFACTS/../b/stderr" ] && exit {code}; sleep 0.01; done; exit 9'
)


def test_the_next_node_of_a_sequence_has_its_files_while_the_one_before_runs(tmp_path: Path) -> None:
    a = Node(name="a", executable=Command(WAITS_FOR_NEXT.format(code=0)))
    b = Node(name="b", executable=Command("cat $WTFLOW_ARTIFACTS/stdout; echo b; echo oops >&2"))
    engine = Engine(wf(a, b), config(tmp_path))
    assert engine.run() == 0
    assert a.retcode == 0  # 9: no file came while it ran
    assert (b.stdout_artifact.text(), b.stderr_artifact.text()) == ("b\n", "oops\n")
    assert engine.run_dir is not None
    assert b.stdout_artifact.path == engine.run_dir / "root" / "b" / "stdout"


@pytest.mark.parametrize("case", ["the node before failed", "its condition is false"])
def test_files_made_ahead_for_a_node_that_does_not_run_are_gone_when_the_run_ends(
    tmp_path: Path, case: str
) -> None:
    failed = case == "the node before failed"
    a = Node(name="a", executable=Command(WAITS_FOR_NEXT.format(code=3 if failed else 0)))
    b = Node(name="b", executable=Command("echo b"), when=failed)  # True: only the failure skips it
    engine = Engine(wf(a, b), config(tmp_path))
    assert engine.run() == (1 if failed else 0)
    assert a.retcode == (3 if failed else 0)  # 9: no file came while it ran
    assert b.status is Status.SKIPPED
    assert engine.run_dir is not None
    assert sorted(p.name for p in (engine.run_dir / "root").iterdir()) == ["a"]


def test_raw_console_shows_the_nodes_bytes_and_nothing_else(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    nodes = [Node(name=f"p{i}", executable=Command(f"printf 'line {i}\\npartial {i}'")) for i in range(3)]
    assert Engine(wf(*nodes, parallel=True), config(tmp_path, run__console="raw")).run() == 0
    out = capfd.readouterr().out
    # Complete lines come whole; each unterminated tail comes whole when its node ends, unaltered.
    assert len(out) == sum(len(f"line {i}\npartial {i}") for i in range(3))
    for i in range(3):
        assert f"line {i}\n" in out
        assert f"partial {i}" in out


class Blind(Collect):
    wants_output = False


@pytest.mark.parametrize("watched", [True, False], ids=["watched", "unwatched"])
def test_output_reaches_the_files_exactly_whether_or_not_a_listener_watches(
    tmp_path: Path, watched: bool
) -> None:
    # Unwatched, no OutputReceived is made at all; the files and the recorded order are the same.
    blob = "import sys; sys.stdout.buffer.write(bytes(range(256)) * 40000); sys.stderr.write('e' * 70000)"
    node = Node("n", Command(py(blob)))
    blind = Blind()
    listeners = [blind, Collect()] if watched else [blind]
    assert Engine(wf(node), config(tmp_path), listeners=listeners).run() == 0
    assert node.stdout_artifact.data == bytes(range(256)) * 40000
    assert node.stderr_artifact.data == b"e" * 70000
    assert blind.of(OutputReceived) == []
    [finished] = [e for e in blind.of(NodeFinished) if e.attempt]
    assert (finished.stdout_size, finished.stderr_size) == (256 * 40000, 70000)
    assert finished.output_order is not None
    assert {
        stream: sum(n for s, n in finished.output_order if s == stream) for stream in ("stdout", "stderr")
    } == {
        "stdout": 256 * 40000,
        "stderr": 70000,
    }
    if watched:
        seen = b"".join(e.data for e in listeners[1].of(OutputReceived) if e.stream == "stdout")
        assert seen == bytes(range(256)) * 40000


def _nap() -> None:
    import time

    time.sleep(30)


async def test_cancelling_while_parallel_nodes_are_being_set_up_leaks_no_fd(tmp_path: Path) -> None:
    # Parallel nodes create their files and start in worker threads; a cancel landing meanwhile
    # must still see every file closed and every process ended.
    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = fds()
    for _ in range(5):
        nodes = [Node(f"p{i}", PyFunc(func=_nap)) for i in range(6)] + [
            Node(f"c{i}", Command("sleep 30")) for i in range(6)
        ]
        seen = Collect()
        engine = Engine(wf(*nodes, parallel=True), config(tmp_path, run__max_parallel=12), listeners=[seen])
        task = asyncio.create_task(engine.run_async())
        while not seen.of(NodeStarted):  # the first is up: the others are being set up
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert fds() == before


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def test_running_twice_records_two_runs_with_separate_folders(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    first = Node(name="a", executable=Command('echo "$WTFLOW_RUN_ID"'))
    workflow = wf(first)
    engine = Engine(workflow, config(tmp_path, db__url=f"sqlite:///{db}"))
    assert engine.run() == 0
    run1, dir1 = engine.run_id, engine.run_dir
    assert first.stdout_artifact.text() == f"{run1}\n"
    assert engine.run() == 0
    # The same workflow in another engine, too.
    assert Engine(workflow, config(tmp_path, db__url=f"sqlite:///{db}")).run() == 0
    runs = _rows(db, "select id, run_dir, status from runs order by started_at")
    assert len({r[0] for r in runs}) == 3
    assert len({r[1] for r in runs}) == 3
    assert runs[0][:2] == (run1, str(dir1))
    assert {r[2] for r in runs} == {"succeeded"}
    assert dir1 is not None
    assert (dir1 / "root" / "a" / "stdout").read_text() == f"{run1}\n"  # not overwritten
    assert first.stdout_artifact.text() == f"{runs[2][0]}\n"  # the handle follows the latest run


def test_a_program_that_cannot_start_is_recorded_as_an_attempt_with_127(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    node = Node(name="a", executable=Command([str(tmp_path / "missing-program")]))
    engine = Engine(wf(node), config(tmp_path, db__url=f"sqlite:///{db}"))
    assert engine.run() == 1
    assert (node.status, node.retcode, node.attempts) == (Status.FAILED, 127, 1)
    assert "missing-program" in node.stderr_artifact.text()
    assert _rows(db, "select n, status, exit_code, pid from attempts where node_index = 1") == [
        (1, "failed", 127, None)
    ]


def test_a_file_name_that_is_not_utf8_runs_as_its_bytes_and_is_recorded(tmp_path: Path) -> None:
    """os.listdir gives such a name with surrogates; the process gets the original bytes."""
    db = tmp_path / "w.db"
    (tmp_path / os.fsdecode(b"caf\xe9")).write_bytes(b"inside\n")
    (name,) = [n for n in os.listdir(tmp_path) if n.startswith("caf")]
    node = Node(name="cat", executable=Command(["cat", name]), cwd=tmp_path, env={"NAME": name})
    shell = Node(name="shell", executable=Command(f"printf '%s' \"$NAME\"; cat {name}"), cwd=tmp_path,
                 env={"NAME": name})  # fmt: skip
    assert Engine(wf(node, shell), config(tmp_path, db__url=f"sqlite:///{db}")).run() == 0
    assert node.stdout_artifact.data == b"inside\n"
    assert shell.stdout_artifact.data == b"caf\xe9inside\n"
    assert _rows(db, "select executes from nodes where name = 'cat'") == [("cat 'caf\\xe9'",)]


def test_every_node_knows_its_run_node_attempt_and_artifacts_folder(tmp_path: Path) -> None:
    script = (
        'echo "$WTFLOW_NODE $WTFLOW_ATTEMPT"; test "$WTFLOW_ATTEMPT" = 2 && touch "$WTFLOW_ARTIFACTS/extra"'
    )
    node = Node(name="a", executable=Command(script + "; test $WTFLOW_ATTEMPT = 2"), retries=1, retry_delay=0)
    engine = Engine(wf(node), config(tmp_path))
    assert engine.run() == 0
    assert node.stdout_artifact.text() == "root/a 2\n"
    assert node.stdout_artifact.path.parent.name == "attempt-2"
    assert (node.stdout_artifact.path.parent / "extra").exists()
