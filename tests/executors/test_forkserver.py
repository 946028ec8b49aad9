"""PyFuncs are forked from a single-threaded server forked at the run's start (forkserver.py),
not from the orchestrator, which has threads by then; and they see what the run did since."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.helpers import config, gone, wait_for, wf
from wtflow import Engine, Node, PyFunc, Status


def _threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("Threads:")[1].split()[0])


def _parentage(orchestrator: int) -> dict[str, int]:
    parent = os.getppid()
    return {
        "parent": parent,
        "parent_threads": _threads(parent),
        "orchestrator_threads": _threads(orchestrator),
    }


def test_pyfuncs_are_forked_from_a_single_threaded_server_while_the_orchestrator_has_threads(
    tmp_path: Path,
) -> None:
    me = os.getpid()
    nodes = [Node(f"f{i}", PyFunc(func=_parentage, args=(me,))) for i in range(4)]
    record = f"sqlite:///{tmp_path / 'record.db'}"  # the recorder's writer is a thread
    engine = Engine(wf(Node("group", children=nodes, parallel=True)), config(tmp_path, db__url=record))
    assert engine.run() == 0
    seen = [n.result_artifact.value for n in nodes]
    assert all(s["orchestrator_threads"] > 1 for s in seen)  # forking here would copy one thread of them
    assert {s["parent"] for s in seen} != {me}
    assert len({s["parent"] for s in seen}) == 1  # one server for the run
    assert all(s["parent_threads"] == 1 for s in seen)
    assert gone(seen[0]["parent"])  # the server ended with the run, and was reaped


def _fail_the_first_time(marker: str) -> None:
    first = not Path(marker).exists()
    Path(marker).touch()
    print("first attempt" if first else "second attempt")
    if first:
        raise SystemExit(3)


def test_a_closure_reads_the_artifacts_the_run_bound_after_the_server_was_forked(tmp_path: Path) -> None:
    """The server's copy of the tree is made before any node ran: what the run did since (the
    latest attempt's files, a result, a node's status) travels with each request, so a PyFunc
    sees the tree as a fork of the orchestrator would."""
    flaky = Node("flaky", PyFunc(func=_fail_the_first_time, args=(str(tmp_path / "marker"),)), retries=1)
    answer = Node("answer", PyFunc(func=lambda: {"n": 42}))
    reader = Node(
        "reader",
        PyFunc(func=lambda: (flaky.stdout_artifact.text(), answer.result_artifact.value, flaky.attempts)),
    )
    engine = Engine(wf(flaky, answer, reader), config(tmp_path))
    assert engine.run() == 0
    assert reader.result_artifact.value == ["second attempt\n", {"n": 42}, 2]


def _children(parent: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def _next_one_waiting() -> dict[str, object]:
    """This PyFunc's pid, and the one forked after it to wait for the next request."""
    me, server = os.getpid(), os.getppid()
    spares = wait_for(lambda: _children(server) - {me}, "the spare of the fork server")
    return {"me": me, "spares": sorted(spares)}


def test_each_pyfunc_of_a_sequence_is_forked_while_the_one_before_runs_and_no_spare_outlives_the_run(
    tmp_path: Path,
) -> None:
    """Forking a copy of the orchestrator takes milliseconds: the server forks the next PyFunc's
    process while the current one runs, and the run's end ends the one nobody needed."""
    nodes = [Node(f"f{i}", PyFunc(func=_next_one_waiting)) for i in range(3)]
    engine = Engine(wf(*nodes), config(tmp_path))
    assert engine.run() == 0
    seen = [n.result_artifact.value for n in nodes]
    for before, after in itertools.pairwise(seen):
        assert before["spares"] == [after["me"]]  # it was there, waiting, while the one before ran
    [last_spare] = seen[-1]["spares"]
    assert gone(last_spare)


def _killer(orchestrator: int) -> None:
    if os.getppid() == orchestrator:
        raise SystemExit("forked by the orchestrator, not by a fork server")
    server = os.getppid()
    spares = wait_for(lambda: _children(server) - {os.getpid()}, "the spare of the fork server")
    Path(os.environ["WTFLOW_ARTIFACTS"], "spares").write_text(" ".join(map(str, spares)))
    os.kill(server, signal.SIGKILL)
    print("killed the fork server")


def _after() -> str:
    return "ran"


def test_a_fork_server_killed_from_outside_fails_its_nodes_and_later_pyfuncs_still_run(
    tmp_path: Path,
) -> None:
    killer = Node("killer", PyFunc(func=_killer, args=(os.getpid(),)))
    after = Node("after", PyFunc(func=_after))
    engine = Engine(wf(killer, after), config(tmp_path, run__ignore_failure=True))
    engine.run()
    assert killer.stdout_artifact.text() == "killed the fork server\n"
    assert killer.status is Status.FAILED  # how it ended died with the server
    assert killer.retcode == 70
    assert after.status is Status.SUCCEEDED
    assert after.result_artifact.value == "ran"
    spares = (killer.stdout_artifact.path.parent / "spares").read_text().split()
    # The spare waiting for the next request sees the end of its socket and leaves with the server.
    wait_for(lambda: all(gone(int(pid)) for pid in spares), "the dead server's spare to leave")


def _measure(orchestrator: int, data: str) -> list[object]:
    return [os.getppid() == orchestrator, len(data)]


def _grow(orchestrator: int) -> list[Node]:
    return [Node("big", PyFunc(func=_measure, args=(orchestrator, "x" * 300_000)))]


def test_a_request_too_big_for_a_datagram_still_goes_to_the_server(tmp_path: Path) -> None:
    # A grown node is not in the server's copy: its 300 kB argument travels whole, in a memfd.
    grower = Node("grower", PyFunc(func=_grow, args=(os.getpid(),)))
    engine = Engine(wf(grower), config(tmp_path))
    assert engine.run() == 0
    [big] = [p.node for p in engine.workflow.placed if p.node.name == "big"]
    assert big.result_artifact.value == [False, 300_000]  # its parent was not the orchestrator


SCRIPT = """\
import sys
from pathlib import Path
import wtflow

def square(n):
    import sqlalchemy.orm  # what the recorder's writer thread is importing meanwhile
    print(n * n)
    return n * n

state = Path(sys.argv[1])
wf = wtflow.Workflow(name="warned", root=wtflow.Node(name="root", parallel=True, children=[
    wtflow.Node(name=f"sq{i}", executable=wtflow.PyFunc(func=square, args=(i,))) for i in range(6)
]))
config = wtflow.Config.load(overrides={"database.url": f"sqlite:///{state / 'record.db'}",
                                       "storage.state_dir": state})
raise SystemExit(wtflow.Engine(wf, config=config).run())
"""


def test_a_run_of_pyfuncs_under_dev_mode_raises_no_deprecation_warning_and_hangs_on_no_lock(
    tmp_path: Path,
) -> None:
    """Python 3.12 warns on every fork of a process that has threads: an error here. And the
    PyFuncs import SQLAlchemy while the recorder's thread imports it beside the first nodes: a
    fork of the orchestrator then would hold that import's module locks, and hang."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(SCRIPT))
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error::DeprecationWarning", str(script), str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr
    assert sorted(int(p.read_text()) for p in tmp_path.glob("artifacts/warned/latest/root/*/stdout")) == [
        0, 1, 4, 9, 16, 25,
    ]  # fmt: skip


def _collects() -> bool:
    import gc

    return gc.isenabled()


def test_a_pyfunc_forked_by_the_server_collects_its_garbage(tmp_path: Path) -> None:
    # The server itself runs without the collector (nothing of the orchestrator's may be
    # finalized there); a function's process must not inherit that.
    node = Node("gc", PyFunc(func=_collects))
    assert Engine(wf(node), config(tmp_path)).run() == 0
    assert node.result_artifact.value is True


def _streams(orchestrator: int) -> dict[str, object]:
    print("out")
    print("err", file=sys.stderr)
    os.write(1, b"raw\n")  # the fd, under the text file: both land in the artifact, in order
    return {
        "served": os.getppid() != orchestrator,
        "fds": [sys.stdin.fileno(), sys.stdout.fileno(), sys.stderr.fileno()],
        "seekable": [sys.stdout.seekable(), sys.stderr.seekable()],
        "terminal": sys.stdout.isatty(),
        "stdin": sys.stdin.read(),
    }


def test_a_pyfuncs_streams_are_those_of_its_pipes_though_its_spare_made_them_ahead(tmp_path: Path) -> None:
    """A spare makes sys.stdin, sys.stdout and sys.stderr before its request comes, on a stand-in
    pipe: they are what they would be on the node's own pipes, not on the orchestrator's stdout,
    which is a regular file here (seekable, as a CI log is)."""
    nodes = [Node(f"f{i}", PyFunc(func=_streams, args=(os.getpid(),))) for i in range(2)]
    engine = Engine(wf(*nodes), config(tmp_path))
    saved = os.dup(1)
    try:
        with (tmp_path / "orchestrator-stdout").open("wb") as log:
            os.dup2(log.fileno(), 1)  # the fork server, and so every spare, inherits it
            code = engine.run()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    assert code == 0
    for node in nodes:  # the second one's spare was forked, and made its streams, while the first ran
        assert node.result_artifact.value == {
            "served": True, "fds": [0, 1, 2], "seekable": [False, False], "terminal": False, "stdin": "",
        }  # fmt: skip
        assert node.stdout_artifact.text() == "out\nraw\n"
        assert node.stderr_artifact.text() == "err\n"
    assert (tmp_path / "orchestrator-stdout").read_bytes() == b""
