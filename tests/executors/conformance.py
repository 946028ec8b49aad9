"""The contract every executor passes: subclass `ExecutorConformance` and give it an `executor`
fixture (see test_local_conformance.py). The PyFuncs are module-level functions, so that an
executor running them elsewhere can pickle them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.helpers import gone
from tests.procs import argv, wait_for_pids
from wtflow import Command, PyFunc
from wtflow.executables import Executable
from wtflow.executors import (
    AttemptId,
    ExecRequest,
    ExecResult,
    Executor,
    OnStopping,
    StartNotice,
    announces_stopping,
    run_attempt,
)

WAIT = 30.0  # a hang guard, not a speed claim


class Chunks:
    """A sink keeping every chunk as it came."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    async def write(self, data: bytes) -> None:
        assert isinstance(data, bytes)
        self.chunks.append(data)

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


class Outcome:
    def __init__(
        self, result: ExecResult, out: Chunks, err: Chunks, notices: list[StartNotice], stops: list[str]
    ) -> None:
        self.result, self.out, self.err, self.notices, self.stops = result, out, err, notices, stops


def request(
    executable: Executable, *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> ExecRequest:
    return ExecRequest(executable, env or {}, cwd, AttemptId("conformance", 0, ("n",), 1))


async def run(executor: Executor, req: ExecRequest, on_stopping: OnStopping | None = None) -> Outcome:
    """Run `req`; the reasons given to on_stopping are in `Outcome.stops` unless `on_stopping` is given."""
    out, err, notices, stops = Chunks(), Chunks(), list[StartNotice](), list[str]()
    async with asyncio.timeout(WAIT):
        result = await run_attempt(executor, req, sinks={"stdout": out, "stderr": err},
                                   on_start=notices.append, on_stopping=on_stopping or stops.append)  # fmt: skip
    return Outcome(result, out, err, notices, stops)


def needs_stopping_notices(executor: Executor) -> None:
    if not announces_stopping(executor):
        pytest.skip(f"{type(executor).__name__}.run() takes no on_stopping (it is optional)")


def sh(script: str) -> Command:
    return Command(script)


def py(code: str, *args: str) -> Command:
    return Command([sys.executable, "-c", code, *args])


def exits_with(code: int) -> None:
    raise SystemExit(code)


def raises() -> None:
    raise RuntimeError("broken on purpose")


def prints_env(name: str) -> None:
    print(os.environ.get(name), os.getcwd())


async def wait_for_file(path: Path) -> str:
    async with asyncio.timeout(WAIT):
        while not path.exists() or not path.read_text().strip():
            await asyncio.sleep(0.01)
    return path.read_text()


class ExecutorConformance:
    """Needs a fixture `executor` giving a fresh executor (closed by the fixture)."""

    async def test_exit_codes(self, executor: Executor) -> None:
        for code in (0, 1, 3, 255):
            outcome = await run(executor, request(sh(f"exit {code}")))
            assert outcome.result == ExecResult(exit_code=code)
            assert outcome.result.code == code
            assert outcome.result.started

    async def test_a_start_notice_before_the_result(self, executor: Executor) -> None:
        outcome = await run(executor, request(sh("echo hi")))
        assert len(outcome.notices) == 1
        assert outcome.notices[0].host

    @pytest.mark.parametrize("sig", [9, 15])
    async def test_a_signal_death_says_the_signal(self, executor: Executor, sig: int) -> None:
        outcome = await run(executor, request(sh(f"kill -{sig} $$")))
        assert outcome.result.signal == sig
        assert outcome.result.exit_code is None
        assert outcome.result.code == -sig

    async def test_chunks_arrive_in_order_and_whole(self, executor: Executor) -> None:
        code = "import sys\nfor i in range(20000): sys.stdout.write(f'line {i}\\n')\n"
        outcome = await run(executor, request(py(code)))
        assert outcome.result.code == 0
        assert outcome.out.data == "".join(f"line {i}\n" for i in range(20000)).encode()

    async def test_the_two_streams_are_kept_apart(self, executor: Executor) -> None:
        outcome = await run(executor, request(sh("echo out; echo err >&2")))
        assert (outcome.out.data, outcome.err.data) == (b"out\n", b"err\n")

    async def test_binary_output_is_kept_byte_for_byte(self, executor: Executor) -> None:
        code = "import sys\nsys.stdout.buffer.write(bytes(range(256)) * 1000)\n"
        outcome = await run(executor, request(py(code)))
        assert outcome.out.data == bytes(range(256)) * 1000

    async def test_cancelling_stops_the_whole_process_tree(self, executor: Executor, tmp_path: Path) -> None:
        pids = tmp_path / "pids"
        script = f"sleep 100 & echo $$ $! > {pids}.tmp; mv {pids}.tmp {pids}; wait"
        task = asyncio.create_task(run(executor, request(sh(script))))
        leader, grandchild = map(int, (await wait_for_file(pids)).split())
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Stopped before the CancelledError went on: no polling needed.
        assert gone(leader)
        assert gone(grandchild)

    async def test_a_time_limit_stops_the_tree_and_says_so(self, executor: Executor, tmp_path: Path) -> None:
        pids = tmp_path / "pids"
        script = f"sleep 100 & echo $$ $! > {pids}.tmp; mv {pids}.tmp {pids}; wait"
        req = dataclasses.replace(request(sh(script)), timeout=0.5)
        outcome = await run(executor, req)
        assert outcome.result.timed_out
        assert outcome.result.code == -15
        assert all(gone(int(pid)) for pid in pids.read_text().split())

    async def test_a_time_limit_is_announced_as_stopping(self, executor: Executor) -> None:
        needs_stopping_notices(executor)
        outcome = await run(executor, dataclasses.replace(request(sh("sleep 100")), timeout=0.2))
        assert outcome.stops == ["timed out"]

    async def test_a_cancellation_is_announced_before_the_processes_are_stopped(
        self, executor: Executor, tmp_path: Path
    ) -> None:
        """The notice comes while the processes still run: a node shows as stopping during the grace."""
        needs_stopping_notices(executor)
        pids, alive, stops = tmp_path / "pids", list[bool](), list[str]()

        def on_stopping(reason: str) -> None:
            alive.append(not any(gone(pid) for pid in wait_for_pids(pids)))
            stops.append(reason)

        task = asyncio.create_task(run(executor, request(Command(argv("stubborn.py", pids))), on_stopping))
        await wait_for_file(pids)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert stops == ["cancelled"]
        assert alive == [True]

    async def test_an_attempt_that_ends_by_itself_is_not_stopping(self, executor: Executor) -> None:
        assert (await run(executor, request(sh("exit 3")))).stops == []

    async def test_a_missing_program_could_not_start(self, executor: Executor, tmp_path: Path) -> None:
        outcome = await run(executor, request(Command([str(tmp_path / "no-such-program")])))
        assert outcome.result.error is not None
        assert "no-such-program" in outcome.result.error
        assert not outcome.result.started
        assert outcome.result.code == 127

    async def test_a_missing_cwd_could_not_start(self, executor: Executor, tmp_path: Path) -> None:
        outcome = await run(executor, request(sh("true"), cwd=tmp_path / "no-such-folder"))
        assert outcome.result.error is not None
        assert outcome.result.code == 127

    async def test_env_changes_are_merged_onto_the_environment(self, executor: Executor) -> None:
        outcome = await run(executor, request(sh('echo "$WTFLOW_TEST_VALUE" "${PATH:+has-path}"'),
                                              env={"WTFLOW_TEST_VALUE": "a b"}))  # fmt: skip
        assert outcome.out.data == b"a b has-path\n"

    async def test_cwd_is_applied(self, executor: Executor, tmp_path: Path) -> None:
        outcome = await run(executor, request(sh("pwd -P"), cwd=tmp_path))
        assert outcome.out.data.decode().strip() == str(tmp_path.resolve())

    async def test_a_process_closing_its_stdout_early_still_ends(self, executor: Executor) -> None:
        outcome = await run(executor, request(Command(argv("close_stdout.py", 3, 4))))
        assert outcome.result.code == 4
        assert outcome.err.data == b"err 0\nerr 1\nerr 2\n"

    async def test_pyfunc_exit_codes(self, executor: Executor) -> None:
        assert (await run(executor, request(PyFunc(func=print, args=("hi",))))).result.code == 0
        assert (await run(executor, request(PyFunc(func=exits_with, args=(5,))))).result.code == 5

    async def test_pyfunc_exception_is_a_failure_with_its_traceback(self, executor: Executor) -> None:
        outcome = await run(executor, request(PyFunc(func=raises)))
        assert outcome.result.code == 1
        assert b"RuntimeError: broken on purpose" in outcome.err.data

    async def test_pyfunc_gets_env_changes_and_cwd(self, executor: Executor, tmp_path: Path) -> None:
        req = request(PyFunc(func=prints_env, args=("WTFLOW_TEST_VALUE",)), env={"WTFLOW_TEST_VALUE": "x"},
                      cwd=tmp_path)  # fmt: skip
        outcome = await run(executor, req)
        assert outcome.out.data.decode().split() == ["x", str(tmp_path)]
