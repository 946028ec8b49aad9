from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import gone
from wtflow import Command, PyFunc
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


async def test_cancel_while_the_process_is_being_started_leaves_nothing(
    tmp_path: Path, executor: LocalExecutor
) -> None:
    """Commands start in a worker thread while others run; a cancel that lands meanwhile must
    still end them."""
    started: list[int] = []
    other = asyncio.create_task(
        executor.run(
            request(Command(["sleep", "100"])),
            sinks={"stdout": Buffer(), "stderr": Buffer()},
            on_start=record_pids(started),
        )
    )
    while not started:
        await asyncio.sleep(0.01)
    for _ in range(20):
        task = asyncio.create_task(
            executor.run(
                request(Command(["sleep", "100"])),
                sinks={"stdout": Buffer(), "stderr": Buffer()},
                on_start=record_pids(started),
            )
        )
        await asyncio.sleep(0)  # the spawn is under way in its thread
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    other.cancel()
    with pytest.raises(asyncio.CancelledError):
        await other
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


async def test_pyfunc_does_not_hold_other_nodes_pipes_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PyFunc forked while a command is being started beside it (in a worker thread, its pipes'
    write ends still open here) inherits those ends; if it kept them, the command would not see
    EOF until the PyFunc ended. The command's start is held at that moment until the fork is done."""
    forked, release = tmp_path / "forked", tmp_path / "release"
    held, go = threading.Event(), threading.Event()
    real_popen = subprocess.Popen

    def held_popen(*args: Any, **kw: Any) -> subprocess.Popen[bytes]:
        popen = real_popen(*args, **kw)
        if args[0] == ["echo", "quick"]:
            held.set()
            assert go.wait(30)  # the write ends are still open in this process
        return popen

    monkeypatch.setattr(subprocess, "Popen", held_popen)  # the module LocalExecutor starts commands with
    executor = LocalExecutor(kill_grace=3600)  # held pipes would keep it waiting, not time out quietly
    first, out, err = Buffer(), Buffer(), Buffer()
    sinks = {"stdout": out, "stderr": err}
    started: list[int] = []
    blocker = asyncio.create_task(executor.run(request(Command(["sleep", "3600"])),
                                               sinks={"stdout": first, "stderr": Buffer()}, on_start=record_pids(started)))  # fmt: skip
    async with asyncio.timeout(30):  # hang guards
        while not started:
            await asyncio.sleep(0.01)
        quick = asyncio.create_task(executor.run(request(Command(["echo", "quick"])), sinks=sinks,
                                                 on_start=lambda notice: None))  # fmt: skip
        while not held.is_set():
            await asyncio.sleep(0.01)
        slow = asyncio.create_task(executor.run(request(PyFunc(func=_touch_then_wait, args=(str(forked), str(release)))),
                                                sinks={"stdout": Buffer(), "stderr": Buffer()}, on_start=lambda notice: None))  # fmt: skip
        while not forked.exists():
            await asyncio.sleep(0.01)
        go.set()
        result = await quick  # while the PyFunc still runs
    assert (result.code, out.data) == (0, b"quick\n")
    release.touch()
    blocker.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocker
    async with asyncio.timeout(30):
        assert (await slow).code == 0
    await executor.aclose()


async def test_pyfunc_runs_in_a_child_in_its_own_session() -> None:
    code, out, _ = await run(PyFunc(func=lambda: print(os.getsid(0) == os.getpid(), os.getpid() != PARENT)))
    assert (code, out.data) == (0, b"True True\n")


PARENT = os.getpid()


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
