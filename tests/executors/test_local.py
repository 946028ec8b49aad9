from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.helpers import gone
from wtflow import Command, Node, PyFunc, Workflow
from wtflow.executors import AttemptId, ExecRequest, StartNotice, local
from wtflow.executors.local import LocalExecutor, processes_with_token


class Buffer:
    def __init__(self) -> None:
        self.data = b""

    async def write(self, data: bytes) -> None:
        self.data += data


def request(executable: Command | PyFunc, run_id: str = "t-test") -> ExecRequest:
    return ExecRequest(executable, {}, None, AttemptId(run_id, 0, ("n",), 1))


async def run(executable: Command | PyFunc, **kw: object) -> tuple[int | None, Buffer, Buffer]:
    out, err = Buffer(), Buffer()
    executor = LocalExecutor(kill_grace=0.5)
    try:
        result = await executor.run(
            request(executable), sinks={"stdout": out, "stderr": err}, on_start=lambda notice: None
        )
    finally:
        await executor.aclose()
    return result.code, out, err


@pytest.fixture
async def executor() -> AsyncIterator[LocalExecutor]:
    local_executor = LocalExecutor(kill_grace=0.5)
    yield local_executor
    await local_executor.aclose()


def record_pids(started: list[int]) -> Callable[[StartNotice], None]:
    def on_start(notice: StartNotice) -> None:
        assert notice.pid is not None
        started.append(notice.pid)

    return on_start


async def test_exit_code_and_streams() -> None:
    code, out, err = await run(Command("echo out; echo err >&2; exit 7"))
    assert (code, out.data, err.data) == (7, b"out\n", b"err\n")


async def test_signal_death_is_a_negative_code() -> None:
    code, _, _ = await run(Command("kill -9 $$"))
    assert code == -9


async def test_output_without_newline_streams_in_chunks() -> None:
    code, out, _ = await run(Command([sys.executable, "-c", "import sys; sys.stdout.write('y' * 3_000_000)"]))
    assert code == 0
    assert out.data == b"y" * 3_000_000


async def test_cancel_stops_the_whole_group_and_propagates(tmp_path: Path, executor: LocalExecutor) -> None:
    """Regression guard: cancellation must not be swallowed, and no grandchild may survive it."""
    pids = tmp_path / "pids"
    started: list[int] = []
    task = asyncio.create_task(
        executor.run(
            request(Command(f"sleep 100 & echo $! > {pids}; sleep 100")),
            sinks={"stdout": Buffer(), "stderr": Buffer()},
            on_start=record_pids(started),
        )
    )
    async with asyncio.timeout(30):
        while not pids.exists() or not pids.read_text().strip():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert not Path(f"/proc/{started[0]}").exists()  # our own child: reaped, not a zombie
    assert gone(int(pids.read_text()))


async def test_cancel_right_after_the_start_leaves_nothing(tmp_path: Path, executor: LocalExecutor) -> None:
    """A cancel that lands as soon as a command has started, while another runs, ends it and
    leaves the other running."""
    started: list[int] = []
    other = asyncio.create_task(
        executor.run(
            request(Command(["sleep", "100"]), run_id="t-other"),
            sinks={"stdout": Buffer(), "stderr": Buffer()},
            on_start=record_pids(started),
        )
    )
    while not started:
        await asyncio.sleep(0.01)
    [kept] = started
    for i in range(20):
        task = asyncio.create_task(
            executor.run(
                request(Command(["sleep", "100"]), run_id=f"t-{i}"),
                sinks={"stdout": Buffer(), "stderr": Buffer()},
                on_start=record_pids(started),
            )
        )
        await asyncio.sleep(0)  # it starts, and waits for its process
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert Path(f"/proc/{kept}").exists()
    other.cancel()
    with pytest.raises(asyncio.CancelledError):
        await other
    assert len(started) == 21
    assert not [pid for pid in started if Path(f"/proc/{pid}").exists()]
    assert not _children_named("sleep")


def _children_named(name: str) -> list[int]:
    me = str(os.getpid())
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        if fields[0].endswith(f"({name}") and fields[1].split()[1] == me:
            found.append(int(stat.parent.name))
    return found


async def test_setsid_escapee_is_found_by_its_token_and_killed_on_cancel(tmp_path: Path) -> None:
    pid_file = tmp_path / "daemon"
    daemon = (
        "import os, sys, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        os.closerange(0, 3)\n"
        f"        open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "        time.sleep(100)\n"
        "    os._exit(0)\n"
        "time.sleep(100)\n"
    )
    task = asyncio.create_task(run(Command([sys.executable, "-c", daemon])))
    async with asyncio.timeout(30):
        while not pid_file.exists() or not pid_file.read_text():
            await asyncio.sleep(0.01)
        pid = int(pid_file.read_text())
        assert processes_with_token("t-test") != []
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    deadline = time.monotonic() + 5
    while not gone(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert gone(pid)


def _hello(name: str) -> None:
    print(f"hello {name}")


def _touch_then_wait(forked: str, release: str) -> None:
    Path(forked).touch()
    while not Path(release).exists():
        time.sleep(0.01)


@pytest.mark.parametrize("served", [True, False])
async def test_a_pyfunc_does_not_hold_other_nodes_pipes_open(tmp_path: Path, served: bool) -> None:
    """Commands that start and end beside a running PyFunc, forked by the fork server or by this
    process, see the end of their output while it runs. Starts happen one at a time on the loop,
    so no fork can copy another node's write ends; before, commands started on worker threads
    and a fork at the wrong moment held a command's pipes open until the PyFunc ended."""
    forked, release = tmp_path / "forked", tmp_path / "release"
    slow_node = PyFunc(func=_touch_then_wait, args=(str(forked), str(release)))
    executor = LocalExecutor(kill_grace=3600)  # held pipes would keep it waiting, not time out quietly
    if served:
        await executor.open(Workflow(name="w", root=Node("n", slow_node)))
    try:
        async with asyncio.timeout(30):  # hang guards
            before = asyncio.create_task(executor.run(request(Command(["sleep", "0.2"])),
                                                      sinks={"stdout": Buffer(), "stderr": Buffer()},
                                                      on_start=lambda notice: None))  # fmt: skip
            slow = asyncio.create_task(executor.run(request(slow_node), sinks={"stdout": Buffer(), "stderr": Buffer()},
                                                    on_start=lambda notice: None))  # fmt: skip
            while not forked.exists():
                await asyncio.sleep(0.01)
            out = Buffer()
            result = await executor.run(request(Command(["echo", "quick"])), sinks={"stdout": out, "stderr": Buffer()},
                                        on_start=lambda notice: None)  # fmt: skip
            assert (result.code, out.data) == (0, b"quick\n")
            assert (await before).code == 0
            assert not slow.done()
            release.touch()
            assert (await slow).code == 0
    finally:
        await executor.aclose()


async def test_pyfunc_runs_in_a_child_in_its_own_session() -> None:
    code, out, _ = await run(PyFunc(func=lambda: print(os.getsid(0) == os.getpid(), os.getpid() != PARENT)))
    assert (code, out.data) == (0, b"True True\n")


PARENT = os.getpid()


def _ignored_mask() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1], 16) for line in f if line.startswith("SigIgn:"))


STOPPING = (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM)


@pytest.mark.parametrize(
    "executable",
    [
        Command("grep SigIgn: /proc/self/status"),  # spawned
        Command(["grep", "SigIgn:", "/proc/self/status"]),  # looked up on PATH: Popen
        PyFunc(func=lambda: print(f"SigIgn: {_ignored_mask():x}")),
    ],
    ids=["shell", "program", "pyfunc"],
)
async def test_a_node_hears_the_signals_that_stop_it_though_this_process_ignores_them(
    executable: Command | PyFunc,
) -> None:
    """As `wtflow cluster` starts its workers (and a script its background jobs): exec keeps an
    ignored signal ignored, and a node that ignores SIGTERM is only ever stopped by SIGKILL."""
    before = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOPPING}
    try:
        code, out, err = await run(executable)
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
    assert code == 0, err.data
    ignored = int(out.data.split()[1], 16)
    assert [sig.name for sig in STOPPING if ignored & (1 << (sig - 1))] == []


def test_a_group_of_zombies_counts_as_ended() -> None:
    # Killed grandchildren wait as zombies until init reaps them; stopping must not wait for that.
    proc = subprocess.Popen(["true"], start_new_session=True)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.killpg(proc.pid, 0)  # the kernel still counts the group...
    assert not local._group_alive(proc.pid)  # ...but nothing in it runs
    proc.wait()
    live = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        assert local._group_alive(live.pid)
    finally:
        live.kill()
        live.wait()


class SlowSink(Buffer):
    """A sink whose writes suspend, as a remote log's window does: the pump waits for each."""

    def __init__(self) -> None:
        super().__init__()
        self.writing = False

    async def write(self, data: bytes) -> None:
        assert not self.writing  # the pipe is not read again while a chunk is being written
        self.writing = True
        for _ in range(3):
            await asyncio.sleep(0)
        self.data += data
        self.writing = False


class ImmediateSink(Buffer):
    """A sink the pump writes from the loop's readiness callback, never awaiting it."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.fail = fail

    async def write(self, data: bytes) -> None:
        raise AssertionError("a sink with write_now is written with write_now")

    def write_now(self, data: bytes) -> None:
        if self.fail:
            raise RuntimeError("the sink broke")
        self.data += data


@pytest.mark.parametrize("sink", [SlowSink, ImmediateSink])
async def test_every_byte_arrives_in_order_through_either_kind_of_sink(sink: type[Buffer]) -> None:
    program = (
        "import sys\nfor i in range(200_000): sys.stdout.write(f'{i}\\n')\nsys.stderr.write('e' * 300_000)"
    )
    out, err = sink(), sink()
    executor = LocalExecutor(kill_grace=0.5)
    try:
        result = await executor.run(request(Command([sys.executable, "-c", program])),
                                    sinks={"stdout": out, "stderr": err}, on_start=lambda notice: None)  # fmt: skip
    finally:
        await executor.aclose()
    assert result.code == 0
    assert out.data == "".join(f"{i}\n" for i in range(200_000)).encode()
    assert err.data == b"e" * 300_000


class BrokenSlowSink(SlowSink):
    async def write(self, data: bytes) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("the sink broke")


@pytest.mark.parametrize(
    ("broken", "other"), [(lambda: ImmediateSink(fail=True), ImmediateSink), (BrokenSlowSink, SlowSink)]
)
async def test_a_sink_that_raises_fails_the_run_and_closes_its_pipes(
    broken: Callable[[], Buffer], other: Callable[[], Buffer]
) -> None:
    fds = set(os.listdir("/proc/self/fd"))
    executor = LocalExecutor(kill_grace=0.5)
    try:
        with pytest.raises(RuntimeError, match="the sink broke"):
            await executor.run(request(Command("echo out; echo err >&2")),
                               sinks={"stdout": broken(), "stderr": other()}, on_start=lambda notice: None)  # fmt: skip
    finally:
        await executor.aclose()
    assert set(os.listdir("/proc/self/fd")) <= fds
