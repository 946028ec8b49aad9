"""Whole runs on a real LocalCluster (2 worker processes, 1 thread each) through the Dask executor:
the engine's policy, time limits, Ctrl-C, a worker killed mid-node, the artifacts and the record."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from tests.executors.dask_cluster import cluster, distributed
from tests.helpers import Collect, config, gone
from wtflow import Command, Config, Engine, Node, PyFunc, Workflow
from wtflow.events import NodeFinished, NodeStarted
from wtflow.status import Status

__all__ = ["cluster"]

WAIT = 60.0  # a hang guard, not a speed claim

if TYPE_CHECKING:
    from distributed import LocalCluster


def wait_for(path: Path, *, parts: int = 1) -> list[str]:
    deadline = time.monotonic() + WAIT
    while True:
        if path.exists() and len(words := path.read_text().split()) >= parts:
            return words
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def wait_gone(*pids: int) -> None:
    deadline = time.monotonic() + WAIT
    while not all(gone(pid) for pid in pids):
        assert time.monotonic() < deadline, f"still running: {[p for p in pids if not gone(p)]}"
        time.sleep(0.05)


def on_cluster(tmp_path: Path, cluster: LocalCluster, **overrides: Any) -> Config:
    return config(tmp_path, run__executor=cluster.scheduler_address, **overrides)


def run(workflow: Workflow, cfg: Config) -> tuple[int, Collect]:
    events = Collect()
    code = Engine(workflow, cfg, listeners=[events]).run()
    return code, events


def tree(*children: Node, parallel: bool = True) -> Workflow:
    return Workflow(name="remote", root=Node(name="root", children=list(children), parallel=parallel))


def test_a_mixed_tree_runs_with_failures_skips_and_byte_exact_artifacts(
    tmp_path: Path, cluster: LocalCluster
) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(bytes(range(256)) * 4096 + b"no newline at the end")
    ok = Node(name="ok", executable=Command(f"cat {blob}; echo to-stderr >&2"))
    bad = Node(name="bad", executable=Command("echo failing; exit 3"),
               children=[Node(name="under-bad", executable=Command("echo never"))])  # fmt: skip
    allowed = Node(name="allowed", executable=Command("exit 1"), allow_failure=True)
    seq = Node(name="seq", children=[
        Node(name="first", executable=Command("exit 2")),
        Node(name="second", executable=Command("echo never")),
    ])  # fmt: skip
    wf = tree(ok, bad, allowed, seq)
    code, events = run(wf, on_cluster(tmp_path, cluster))
    assert code == 1
    statuses = {e.path[-1]: e.status for e in events.of(NodeFinished)}
    assert statuses == {
        "ok": Status.SUCCEEDED, "bad": Status.FAILED, "under-bad": Status.SKIPPED,
        "allowed": Status.FAILED, "first": Status.FAILED, "second": Status.SKIPPED,
        "seq": Status.FAILED, "root": Status.FAILED,
    }  # fmt: skip
    assert ok.stdout_artifact.data == blob.read_bytes()
    assert ok.stderr_artifact.data == b"to-stderr\n"
    assert bad.retcode == 3
    # The same layout as a local run: <run dir>/<node path>/stdout
    started = {e.path[-1]: e for e in events.of(NodeStarted)}
    assert started["ok"].stdout_path.read_bytes() == blob.read_bytes()
    assert started["ok"].stdout_path.parts[-3:] == ("root", "ok", "stdout")
    hosts = {e.host for e in started.values()}
    assert all("tcp://127.0.0.1:" in h for h in hosts), hosts  # each names the worker it ran on


def test_retries_come_from_the_node_not_from_dask(tmp_path: Path, cluster: LocalCluster) -> None:
    counter = tmp_path / "tries"
    flaky = Node(name="flaky", retries=2, retry_delay=0,
                 executable=Command(f'echo x >> {counter}; [ "$(wc -l < {counter})" -ge 3 ]'))  # fmt: skip
    code, events = run(tree(flaky), on_cluster(tmp_path, cluster))
    assert code == 0
    attempts = [(e.attempt, e.status) for e in events.of(NodeFinished) if e.path[-1] == "flaky"]
    assert attempts == [(1, Status.FAILED), (2, Status.FAILED), (3, Status.SUCCEEDED)]
    assert counter.read_text() == "x\nx\nx\n"


def test_a_time_limit_kills_the_grandchild_on_the_worker(tmp_path: Path, cluster: LocalCluster) -> None:
    pids = tmp_path / "pids"
    slow = Node(name="slow", timeout=1, executable=Command(
        f"sleep 100 & echo $$ $! > {pids}.tmp; mv {pids}.tmp {pids}; wait"))  # fmt: skip
    code, _ = run(tree(slow), on_cluster(tmp_path, cluster))
    assert code == 1
    assert slow.status == Status.TIMED_OUT
    leader, grandchild = map(int, wait_for(pids, parts=2))
    assert gone(leader)
    assert gone(grandchild)


def remote_pid() -> None:
    print(os.getpid(), os.getppid())


class _Unpicklable:
    def __init__(self) -> None:
        self.lock = threading.Lock()

    def __call__(self) -> None:
        print("never")


def test_pyfuncs_run_on_the_workers_in_their_own_process(tmp_path: Path, cluster: LocalCluster) -> None:
    node = Node(name="f", executable=PyFunc(func=remote_pid))
    broken = Node(name="broken", executable=PyFunc(func=_Unpicklable()))
    code, _ = run(tree(node, broken), on_cluster(tmp_path, cluster))
    assert code == 1
    pid, parent = map(int, node.stdout_artifact.data.split())
    assert pid != os.getpid()
    assert parent in worker_pids(cluster)  # started by the worker, not forked from the engine
    assert broken.status == Status.FAILED
    message = broken.stderr_artifact.data.decode()
    assert "cannot be sent to the Dask workers" in message
    assert "_Unpicklable" in message or "lock" in message


def worker_pids(cluster: LocalCluster) -> set[int]:
    with distributed.Client(cluster.scheduler_address) as client:
        return set(client.run(os.getpid).values())


WTFILE = """
import wtflow

@wtflow.workflow
def remote():
    return wtflow.Node(name="root", parallel=True, children=[
        wtflow.Node(name=f"n{i}", executable=wtflow.Command(
            f"echo $$ > {ROOM}/n{i}.tmp; sleep 60 & echo $! >> {ROOM}/n{i}.tmp; mv {ROOM}/n{i}.tmp {ROOM}/n{i}; wait"))
        for i in range(2)
    ])
"""


def test_ctrl_c_of_the_client_leaves_no_process_on_any_worker(tmp_path: Path, cluster: LocalCluster) -> None:
    room = tmp_path / "room"
    room.mkdir()
    (tmp_path / "wtfile.py").write_text(WTFILE.replace("{ROOM}", str(room)))
    env = {**os.environ, "WTFLOW_DB_URL": f"sqlite:///{tmp_path / 'w.db'}", "WTFLOW_CONSOLE": "quiet"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "wtflow", "run", "--executor", cluster.scheduler_address],
        cwd=tmp_path, env=env, stderr=subprocess.PIPE,
    )  # fmt: skip
    pids = [int(p) for i in range(2) for p in wait_for(room / f"n{i}", parts=2)]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 130, err.decode()
    # Stopped before wtflow returned: no waiting needed.
    assert all(gone(pid) for pid in pids), [p for p in pids if not gone(p)]
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.connect() as conn:
        statuses = conn.execute(sa.text("select status from attempts")).scalars().all()
    engine.dispose()
    assert statuses == ["cancelled", "cancelled"]


STUBBORN = """
import wtflow

@wtflow.workflow
def stubborn():
    return wtflow.Node(name="stubborn", executable=wtflow.Command(
        "trap 'touch {ROOM}/terminated' TERM; (trap '' TERM; exec sleep 120) & "
        "echo $$ $! > {ROOM}/pids.tmp; mv {ROOM}/pids.tmp {ROOM}/pids; "
        "while kill -0 $! 2>/dev/null; do wait $!; done"))
"""


def test_a_second_ctrl_c_ends_the_client_at_once_and_leaves_no_process_on_any_worker(
    tmp_path: Path, cluster: LocalCluster
) -> None:
    # The node and its grandchild ignore SIGTERM and the grace before SIGKILL is longer than the
    # guard below: only the second Ctrl-C can end the wait. The node's shell notes the SIGTERM of
    # the first, which has then reached the worker.
    room = tmp_path / "room"
    room.mkdir()
    (tmp_path / "wtfile.py").write_text(STUBBORN.replace("{ROOM}", str(room)))
    env = {**os.environ, "WTFLOW_CONSOLE": "quiet"}
    argv = [
        sys.executable,
        "-m",
        "wtflow",
        "run",
        "--executor",
        cluster.scheduler_address,
        "--kill-grace",
        "600",
    ]
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stderr=subprocess.PIPE)
    pids = [int(p) for p in wait_for(room / "pids", parts=2)]
    proc.send_signal(signal.SIGINT)
    wait_for(room / "terminated", parts=0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 130, err.decode()
    # Killed before wtflow returned: no waiting needed.
    assert all(gone(pid) for pid in pids), [p for p in pids if not gone(p)]


def test_the_local_executor_never_imports_dask(tmp_path: Path) -> None:
    (tmp_path / "wtfile.py").write_text(
        "import wtflow\n@wtflow.workflow\ndef w():\n"
        "    return wtflow.Node(name='r', executable=wtflow.Command('true'))\n"
    )
    code = (
        "import sys, json\nfrom wtflow.cli import main\ncode = main(['run', '--console', 'quiet'])\n"
        "print(json.dumps([code, sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'))]))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, check=True)
    assert json.loads(out.stdout.splitlines()[-1]) == [0, []]


@pytest.mark.postgres
def test_a_shared_postgres_record_names_the_workers(
    tmp_path: Path, cluster: LocalCluster, postgres_db_url: str
) -> None:
    nodes = [Node(name=f"n{i}", executable=Command("echo hi")) for i in range(6)]
    code, events = run(tree(*nodes), on_cluster(tmp_path, cluster, db__url=postgres_db_url))
    assert code == 0
    engine = sa.create_engine(postgres_db_url)
    with engine.connect() as conn:
        hosts = conn.execute(sa.text("select host from attempts order by node_index")).scalars().all()
    engine.dispose()
    workers = set(cluster.scheduler_info["workers"])
    assert len(hosts) == 6
    assert all(any(w in h for w in workers) for h in hosts), (hosts, workers)
    assert hosts == [e.host for e in sorted(events.of(NodeStarted), key=lambda e: e.index)]


def test_a_worker_killed_mid_node_is_lost_and_never_run_again(
    tmp_path: Path, cluster: LocalCluster, caplog: pytest.LogCaptureFixture
) -> None:
    """The scheduler hands a task whose worker died to another worker (allowed-failures is 3 by
    default): the claim stops that second start, the attempt is recorded failed as lost, and the
    worker's watchdog has ended the node's processes, and only those: the same run's node on the
    other worker of this machine runs on."""
    pids, starts, gate = tmp_path / "pids", tmp_path / "starts", tmp_path / "gate"
    victim = Node(name="victim", executable=Command(
        f"echo start >> {starts}; sleep 100 & echo $$ $! $PPID > {pids}.tmp; mv {pids}.tmp {pids}; wait"))  # fmt: skip
    survivor = Node(name="survivor", executable=Command(
        f"echo $$ > {pids}-s.tmp; mv {pids}-s.tmp {pids}-s; while [ ! -e {gate} ]; do sleep 0.05; done"))  # fmt: skip
    cfg = on_cluster(tmp_path, cluster, db__url=f"sqlite:///{tmp_path / 'w.db'}")
    outcome: list[tuple[int, Collect]] = []
    runner = threading.Thread(target=lambda: outcome.append(run(tree(victim, survivor), cfg)))
    runner.start()
    try:
        leader, grandchild, worker = map(int, wait_for(pids, parts=3))
        (other,) = map(int, wait_for(Path(f"{pids}-s")))
        assert worker in worker_pids(cluster)
        os.kill(worker, signal.SIGKILL)
        wait_gone(leader, grandchild)
        assert not gone(other)  # the dead worker's watchdog named only its own attempts
    finally:
        gate.touch()
        runner.join(WAIT)
    assert not runner.is_alive()
    code, events = outcome[0]
    assert code == 1
    assert victim.status == Status.FAILED
    assert survivor.status == Status.SUCCEEDED
    # The task went to another worker, which refused it: the claim, not the scheduler, said so.
    assert b"worker lost" in victim.stderr_artifact.data
    assert b"not started again" in victim.stderr_artifact.data
    assert "Traceback" not in caplog.text  # the scheduler (in this process) refused it without one
    assert starts.read_text() == "start\n"
    finished = [e for e in events.of(NodeFinished) if e.path[-1] == "victim"]
    assert [(e.attempt, e.status, e.exit_code) for e in finished] == [(1, Status.FAILED, None)]
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select status, exit_code from attempts order by node_index")).all()
    engine.dispose()
    assert rows == [("failed", None), ("succeeded", 0)]
    with distributed.Client(cluster.scheduler_address) as client:
        assert client.run_on_scheduler(claims_left) == []  # the lost attempt's too, once its task ended
        client.wait_for_workers(2, timeout=WAIT)  # its nanny starts it again; later tests count on two


def claims_left(dask_scheduler: distributed.Scheduler) -> list[str]:
    return sorted(name for name in dask_scheduler.extensions["multi_locks"].locks if "wtflow" in name)


def stop_markers_left(dask_worker: distributed.Worker) -> list[str]:
    from wtflow.executors.dask import _Host

    return sorted(_Host.of(dask_worker)._stopped)


async def test_attempts_cancelled_before_they_start_leave_nothing_on_the_cluster(
    tmp_path: Path, cluster: LocalCluster
) -> None:
    """Two attempts run (one per worker thread) and a third waits in Dask's queue when all three are
    cancelled: the waiting one never starts, and once the run is closed neither its stop markers on
    the workers nor any claim on the scheduler are left."""
    from tests.executors.conformance import Chunks
    from wtflow.executors import AttemptId, ExecRequest
    from wtflow.executors.dask import DaskExecutor
    from wtflow.executors.local import processes_with_token

    executor = DaskExecutor(cluster.scheduler_address, kill_grace=0.5)
    await executor.open()
    starts, run_id = tmp_path / "starts", f"cancel{os.getpid()}"

    def attempt(i: int) -> ExecRequest:
        command = Command(f"echo {i} >> {starts}; sleep 100")
        return ExecRequest(command, {}, None, AttemptId(run_id, i, (f"n{i}",), 1))

    sinks = {"stdout": Chunks(), "stderr": Chunks()}
    tasks = [
        asyncio.create_task(executor.run(attempt(i), sinks=sinks, on_start=lambda _: None)) for i in range(3)
    ]
    try:
        deadline = time.monotonic() + WAIT
        while not starts.exists() or len(starts.read_text().split()) < 2:
            assert time.monotonic() < deadline, "two attempts never started"
            await asyncio.sleep(0.02)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await executor.aclose()
    assert processes_with_token(run_id) == []
    async with distributed.Client(cluster.scheduler_address, asynchronous=True) as client:
        assert await client.run_on_scheduler(claims_left) == []
        markers = [m for left in (await client.run(stop_markers_left)).values() for m in left]
    assert [m for m in markers if m.startswith(f"{run_id}-")] == []


def test_wtflow_cluster_starts_workers_runs_a_wtfile_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    (tmp_path / "wtfile.py").write_text(
        "import wtflow\n@wtflow.workflow\ndef w():\n"
        "    return wtflow.Node(name='r', parallel=True, children=[\n"
        "        wtflow.Node(name=f'n{i}', executable=wtflow.Command('echo $PPID')) for i in range(4)]\n"
        "        + [wtflow.Node(name='sig', executable=wtflow.Command('grep SigIgn: /proc/self/status'))])\n"
    )
    env = {**os.environ, "WTFLOW_CONSOLE": "quiet"}
    with subprocess.Popen(
        [sys.executable, "-m", "wtflow", "cluster", "--workers", "2", "--port", "0"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    ) as cluster:  # fmt: skip
        try:
            _use_and_stop(cluster, tmp_path, env)
        finally:
            if cluster.poll() is None:
                os.killpg(cluster.pid, signal.SIGKILL)
                cluster.wait()


def _use_and_stop(cluster: subprocess.Popen[bytes], tmp_path: Path, env: dict[str, str]) -> None:
    assert cluster.stdout is not None
    assert cluster.stderr is not None
    first = cluster.stdout.readline().decode()
    assert first.startswith("scheduler tcp://"), first + cluster.stderr.read().decode()
    address = first.split()[1]
    assert cluster.stdout.readline().decode().split() == ["workers", "2", "x", "1", "thread"]
    done = subprocess.run([sys.executable, "-m", "wtflow", "run", "--executor", address],
                          cwd=tmp_path, env={**env, "WTFLOW_CONSOLE": "raw"}, capture_output=True,
                          timeout=WAIT)  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    # The workers ignore Ctrl-C; the nodes they start do not, nor the SIGTERM that stops them.
    mask = int(
        next(line for line in done.stdout.decode().splitlines() if line.startswith("SigIgn:")).split()[1], 16
    )
    assert (
        mask & ((1 << (signal.SIGINT - 1)) | (1 << (signal.SIGTERM - 1)) | (1 << (signal.SIGQUIT - 1))) == 0
    )
    with distributed.Client(address) as client:
        workers = set(client.run(os.getpid).values())
    # The group gets the Ctrl-C, as from a terminal: the workers ignore it, the cluster stops them.
    os.killpg(cluster.pid, signal.SIGINT)
    assert cluster.wait(timeout=WAIT) == 0, cluster.stderr.read().decode()
    assert b"Traceback" not in cluster.stderr.read()
    wait_gone(*workers)


def test_resources_pass_through_to_the_workers(tmp_path: Path, cluster: LocalCluster) -> None:
    gpu = Node(name="gpu", executable=Command("echo on a GPU worker"), resources={"GPU": 1})
    tpu = Node(name="tpu", executable=Command("echo never"), resources={"TPU": 1})
    code, _ = run(tree(gpu, tpu), on_cluster(tmp_path, cluster))
    assert code == 1
    assert gpu.status == Status.SUCCEEDED
    assert tpu.status == Status.FAILED
    assert b"no worker of the cluster offers resources TPU=1" in tpu.stderr_artifact.data


FOLLOWED = """
import wtflow

@wtflow.workflow
def live():
    return wtflow.Node(name="root", children=[wtflow.Node(name="tail", executable=wtflow.Command(
        "echo one; while [ ! -e {GATE} ]; do sleep 0.05; done; echo two"))])
"""


def test_logs_follow_streams_a_node_running_on_a_worker(tmp_path: Path, cluster: LocalCluster) -> None:
    gate = tmp_path / "gate"
    (tmp_path / "wtfile.py").write_text(FOLLOWED.replace("{GATE}", str(gate)))
    env = {**os.environ, "WTFLOW_DB_URL": f"sqlite:///{tmp_path / 'w.db'}", "WTFLOW_CONSOLE": "quiet",
           "NO_COLOR": "1"}  # fmt: skip
    with subprocess.Popen([sys.executable, "-m", "wtflow", "run", "--executor", cluster.scheduler_address],
                          cwd=tmp_path, env=env) as runner:  # fmt: skip
        try:
            logs = [sys.executable, "-m", "wtflow", "logs", "last", "tail"]
            deadline = time.monotonic() + WAIT
            while subprocess.run(logs, cwd=tmp_path, env=env, capture_output=True).stdout != b"one\n":
                assert time.monotonic() < deadline, "the node's first line never reached its artifact"
                time.sleep(0.1)
            with subprocess.Popen(
                [*logs, "--follow"], cwd=tmp_path, env=env, stdout=subprocess.PIPE
            ) as follower:
                gate.touch()
                out, _ = follower.communicate(timeout=WAIT)
            assert out == b"one\ntwo\n"
            assert follower.returncode == 0
        finally:
            gate.touch()
            assert runner.wait(timeout=WAIT) == 0


async def test_capacity_is_the_clusters_worker_threads(cluster: LocalCluster) -> None:
    from wtflow.executors.dask import DaskExecutor

    executor = DaskExecutor(cluster.scheduler_address)
    assert executor.capacity is None  # not known before it connects
    await executor.open()
    try:
        assert executor.capacity == 2
    finally:
        await executor.aclose()


def test_what_left_its_group_on_a_worker_ends_with_the_run(tmp_path: Path, cluster: LocalCluster) -> None:
    pid_file = tmp_path / "escapee"
    escapes = Node(name="escapes", executable=Command(
        f"setsid sh -c 'echo $$ > {pid_file}.tmp; mv {pid_file}.tmp {pid_file}; exec sleep 100' & "
        f"while [ ! -e {pid_file} ]; do sleep 0.01; done"))  # fmt: skip
    code, _ = run(tree(escapes), on_cluster(tmp_path, cluster))
    assert code == 0
    (pid,) = map(int, wait_for(pid_file))
    assert gone(pid)  # swept before the run returned


def _grow() -> list[Node]:
    return [Node(name="grown", executable=Command("echo grown on a worker"))]


def test_a_pyfunc_on_a_worker_grows_children(tmp_path: Path, cluster: LocalCluster) -> None:
    """Dynamic children: the returned nodes come back from the worker's process as from a fork."""
    grower = Node(name="grower", executable=PyFunc(func=_grow))
    wf = tree(grower)
    code, _ = run(wf, on_cluster(tmp_path, cluster))
    assert code == 0
    grown = wf.placed[-1].node
    assert (wf.placed[-1].path, grown.status) == (("root", "grower", "grown"), Status.SUCCEEDED)
    assert grown.stdout_artifact.data == b"grown on a worker\n"


def window_of(token_part: str, dask_worker: distributed.Worker) -> tuple[int, int] | None:
    from wtflow.executors.dask import _Host

    for token, window in _Host.of(dask_worker)._windows.items():
        if token_part in token:
            return window.sent, window.written
    return None


async def test_a_node_printing_faster_than_the_client_writes_waits_for_it(
    tmp_path: Path, cluster: LocalCluster
) -> None:
    """Back-pressure: while the client's sink is stuck, the worker sends at most WINDOW bytes of the
    attempt's output and the node waits on its full pipe (it cannot get to the end of its output);
    once the sink goes on, every byte arrives, in order."""
    from tests.executors.conformance import Chunks
    from wtflow.executors import AttemptId, ExecRequest
    from wtflow.executors.dask import PIECE, WINDOW, DaskExecutor

    class Stuck(Chunks):
        def __init__(self) -> None:
            super().__init__()
            self.go_on = asyncio.Event()

        async def write(self, data: bytes) -> None:
            await self.go_on.wait()
            await super().write(data)

    printed, run_id, size = tmp_path / "printed", f"flow{os.getpid()}", 4 * WINDOW
    code = f"import sys, pathlib\nsys.stdout.buffer.write(b'x' * {size})\nsys.stdout.flush()\npathlib.Path({str(printed)!r}).touch()"
    request = ExecRequest(Command([sys.executable, "-c", code]), {}, None, AttemptId(run_id, 0, ("n",), 1))
    executor = DaskExecutor(cluster.scheduler_address, kill_grace=0.5)
    await executor.open()
    out = Stuck()
    task = asyncio.create_task(
        executor.run(request, sinks={"stdout": out, "stderr": Chunks()}, on_start=lambda _: None)
    )
    try:
        async with distributed.Client(cluster.scheduler_address, asynchronous=True) as client:
            deadline = time.monotonic() + WAIT
            while True:
                windows = [w for w in (await client.run(window_of, run_id)).values() if w is not None]
                if windows and windows[0][0] >= WINDOW:
                    break
                assert time.monotonic() < deadline, "the worker never sent a window's worth"
                await asyncio.sleep(0.02)
            sent, written = windows[0]
            assert written == 0  # the client has written nothing, so said nothing
            assert sent <= WINDOW + PIECE
            assert not printed.exists()  # it waits: pipe and window hold far less than its output
        out.go_on.set()
        result = await asyncio.wait_for(task, WAIT)
    finally:
        out.go_on.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await executor.aclose()
    assert result.exit_code == 0
    assert out.data == b"x" * size
    assert printed.exists()
