"""`wtflow kill RUN` ends what a crashed run left on this host; a clean run leaves no watchdog."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from tests.cli.conftest import Run, cli_env
from tests.helpers import gone, wait_for
from tests.procs import argv, wait_for_pids


def _all_gone(pids: list[int]) -> bool:
    return wait_for(lambda: all(gone(p) for p in pids), f"processes {pids} to end", timeout=15)


def _kill_everything(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def test_a_clean_run_leaves_no_watchdog_behind(wtflow: Run, tmp_path: Path) -> None:
    """The reaper leaves with the run, and it ends nothing after a run that ended cleanly."""
    wtfile = tmp_path / "wtfile.py"
    wtfile.write_text(
        "import wtflow\n\n@wtflow.workflow\ndef one():\n"
        '    return wtflow.Node(name="n", executable=wtflow.Command("echo hi"))\n'
    )
    before = _reapers()
    assert wtflow("-f", str(wtfile), "run", env=cli_env(tmp_path)).code == 0
    assert _reapers() == before


def _reapers() -> set[int]:
    """Our watchdog processes (children of this test process)."""
    mine = set()
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            ours = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == os.getpid()
            if ours and b"_watchdog_process.py" in (entry / "cmdline").read_bytes():
                mine.add(int(entry.name))
    return mine


def _leftover(tmp_path: Path, run_id: str) -> tuple[subprocess.Popen[bytes], list[int]]:
    """What a crashed run leaves: a node ignoring SIGTERM, with a grandchild, carrying the token
    (started by hand here, so that no watchdog knows of it)."""
    env = {**os.environ, "WTFLOW_PROCESS_TOKENS": f"{run_id},{run_id}:1:1"}
    proc = subprocess.Popen(
        argv("stubborn.py", tmp_path / "left.pid"), env=env, start_new_session=True, stdout=subprocess.DEVNULL
    )
    return proc, wait_for_pids(tmp_path / "left.pid")


def test_wtflow_kill_ends_what_a_crashed_run_left(wtflow: Run, tmp_path: Path) -> None:
    run_id = os.urandom(16).hex()
    leader, pids = _leftover(tmp_path, run_id)
    try:
        result = wtflow("kill", run_id[:8], env=cli_env(tmp_path, WTFLOW_KILL_GRACE="0.2"))
        assert result.code == 0, result
        assert result.err == f"wtflow: ended 2 process(es) of run {run_id}\n"
        assert leader.wait(timeout=30) == -signal.SIGKILL  # it ignored the SIGTERM
        assert _all_gone(pids)
        again = wtflow("kill", run_id, env=cli_env(tmp_path))
        assert again.err == f"wtflow: no process of run {run_id} is running on this host\n"
    finally:
        _kill_everything(pids)
        leader.wait()


def test_wtflow_kill_refuses_what_is_no_run_id(wtflow: Run, tmp_path: Path) -> None:
    result = wtflow("kill", "ab", env=cli_env(tmp_path))
    assert result.code == 2
    assert result.err == (
        "wtflow: error: run 'ab': is not a run id; give the id or at least its first 4 characters, "
        "as `wtflow runs` shows them\n"
    )


SCRIPT = """\
import os, pathlib, signal, sys, time
import wtflow
from tests.procs import write_pids

def stay(pidfile):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with open(pidfile + ".run", "w") as f:
        f.write(os.environ["WTFLOW_RUN_ID"])
    write_pids(pathlib.Path(pidfile), os.getpid())
    while True:
        time.sleep(1)

wtflow.Engine(wtflow.Workflow("w", wtflow.Node("stay", wtflow.PyFunc(func=stay, args=(sys.argv[1],))))).run()
"""


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError):
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_wtflow_kill_ends_a_pyfunc_whose_run_watchdog_and_fork_server_all_died(
    wtflow: Run, tmp_path: Path
) -> None:
    """A PyFunc's environment in procfs is its fork server's, without the run's token: it is
    found by its process name, which says whose it is."""
    (tmp_path / "script.py").write_text(SCRIPT)
    env = {**cli_env(tmp_path), "PYTHONPATH": str(Path(__file__).parents[2])}
    orchestrator = subprocess.Popen(
        [argv("stubborn.py")[0], str(tmp_path / "script.py"), str(tmp_path / "pyfunc.pid")],
        cwd=tmp_path,
        env=env,
    )
    [pyfunc] = wait_for_pids(tmp_path / "pyfunc.pid")
    try:
        helpers = _children(orchestrator.pid)  # the watchdog and the fork server
        assert len(helpers) == 2, helpers
        # Stopped first, so that none of them sees another die and ends the PyFunc itself.
        for pid in (orchestrator.pid, *helpers):
            os.kill(pid, signal.SIGSTOP)
        for pid in (orchestrator.pid, *helpers):
            os.kill(pid, signal.SIGKILL)
        orchestrator.wait(timeout=30)
        wait_for(lambda: all(gone(p) for p in helpers), "the watchdog and the fork server to be gone")
        assert not gone(pyfunc)
        run_id = (tmp_path / "pyfunc.pid.run").read_text()
        assert Path(f"/proc/{pyfunc}/comm").read_text() == f"wtflow:{run_id[:8]}\n"
        result = wtflow("kill", run_id[:6], env=cli_env(tmp_path, WTFLOW_KILL_GRACE="0.2"))
        assert (result.code, result.err) == (0, f"wtflow: ended 1 process(es) of run {run_id[:8]}\n")
        assert _all_gone([pyfunc])
    finally:
        _kill_everything([orchestrator.pid, pyfunc])
        orchestrator.wait()
