"""Nothing outlives a SIGKILLed wtflow: its watchdog ends every node's processes, escapees too.

Each test starts wtflow (the CLI, or a script calling Engine.run) as a real process, waits until
the nodes' processes have written their pids, SIGKILLs wtflow and checks by pid that every one
of them is gone. The waits are hang guards; the assertions are on the pids.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.cli.conftest import WTFLOW, cli_env
from tests.helpers import gone, wait_for
from tests.procs import argv, wait_for_pids

ROOT = Path(__file__).parents[2]


def _all_gone(pids: list[int]) -> bool:
    # The promise is 2 s; the guard is longer because this machine is shared and loaded.
    return wait_for(lambda: all(gone(p) for p in pids), f"processes {pids} to end", timeout=15)


def _kill_everything(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _wtfile(tmp_path: Path) -> Path:
    """A parallel tree: a node ignoring SIGTERM with a grandchild that does too, and a daemon
    that left its group (setsid) while its leader waits."""
    stubborn = argv("stubborn.py", tmp_path / "stubborn.pid")
    daemon = argv("daemon.py", tmp_path / "daemon.pid", "wait")
    path = tmp_path / "wtfile.py"
    path.write_text(
        textwrap.dedent(f"""\
        import wtflow

        @wtflow.workflow
        def doomed():
            return wtflow.Node(name="root", parallel=True, children=[
                wtflow.Node(name="stubborn", executable=wtflow.Command({stubborn!r})),
                wtflow.Node(name="daemon", executable=wtflow.Command({daemon!r})),
            ])
        """)
    )
    return path


def _pids_of_the_tree(tmp_path: Path) -> list[int]:
    return wait_for_pids(tmp_path / "stubborn.pid") + wait_for_pids(tmp_path / "daemon.pid")


def test_sigkill_of_the_wtflow_command_ends_every_node_process(tmp_path: Path) -> None:
    """Regression test for issue 18, item 5: SIGKILL cannot be caught, so before the watchdog
    a node ignoring SIGTERM, its grandchild and a setsid daemon all outlived wtflow."""
    wtfile = _wtfile(tmp_path)
    env = cli_env(tmp_path)  # the record off: the watchdog needs none
    proc = subprocess.Popen([*WTFLOW, "-f", str(wtfile), "run", "--console", "raw"], env=env, cwd=tmp_path)
    pids: list[int] = []
    try:
        pids = _pids_of_the_tree(tmp_path)
        run_dir = (tmp_path / "state" / "artifacts" / "doomed" / "latest").resolve()
        out = run_dir / "root" / "stubborn" / "stdout"
        wait_for(lambda: out.exists() and out.read_bytes() == b"ready\n", "stubborn's line on disk")
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        assert _all_gone(pids)
        assert out.read_bytes() == b"ready\n"  # what was written before the kill stays
    finally:
        proc.kill()
        proc.wait()
        _kill_everything(pids)


SCRIPT = """\
import sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from tests.procs import argv, write_pids
import wtflow

def sleeper(pid_file):
    import os, signal
    said, say = os.pipe()
    if os.fork() == 0:  # a daemon, the Python way (no exec: no token in procfs)
        os.setsid()
        daemon = os.fork()
        if daemon == 0:
            time.sleep(300)
            os._exit(0)
        os.write(say, str(daemon).encode())
        os._exit(0)
    os.wait()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # so its process dies by SIGKILL, ending nothing
    daemon = int(os.read(said, 32))
    write_pids(Path(pid_file), os.getpid(), os.getppid(), daemon)  # and the fork server it came from
    time.sleep(300)

state = Path(sys.argv[2])
wf = wtflow.Workflow(name="scripted", root=wtflow.Node(name="root", parallel=True, children=[
    wtflow.Node(name="stubborn", executable=wtflow.Command(argv("stubborn.py", state / "stubborn.pid"))),
    wtflow.Node(name="pyfunc", executable=wtflow.PyFunc(sleeper, args=(str(state / "pyfunc.pid"),))),
]))
config = wtflow.Config.load(overrides={"database.url": "", "storage.state_dir": state})
raise SystemExit(wtflow.Engine(wf, config=config).run())
"""


def test_sigkill_of_a_script_calling_engine_run_ends_its_commands_and_pyfuncs(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(ROOT), str(tmp_path)], cwd=tmp_path)
    pids: list[int] = []
    try:
        pids = wait_for_pids(tmp_path / "stubborn.pid") + wait_for_pids(tmp_path / "pyfunc.pid")
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        assert _all_gone(pids)
    finally:
        proc.kill()
        proc.wait()
        _kill_everything(pids)


def test_what_the_orchestrator_said_before_it_died_is_acted_on_though_the_watchdog_was_still_starting() -> (
    None
):
    """The orchestrator told the pipe of a node group, then died before the watchdog's interpreter
    was up (a busy machine): the watchdog, orphaned from its first instant, still reads what the
    pipe holds and ends that group, rather than ending nothing."""
    from wtflow.executors import watchdog

    node = subprocess.Popen(["sleep", "60"], start_new_session=True)  # a node's process group
    gone_parent = subprocess.Popen(["true"])
    gone_parent.wait()
    read, write = os.pipe()
    os.write(write, f"run r1\n+ {node.pid} r1:0:1\n".encode())
    os.close(write)
    try:
        dog = subprocess.Popen(
            [sys.executable, "-I", "-S", watchdog._SCRIPT, str(gone_parent.pid), "0.5"],
            stdin=read, start_new_session=True,
        )  # fmt: skip
        os.close(read)
        assert dog.wait(timeout=60) == 0
        assert node.wait(timeout=30) == -signal.SIGTERM
    finally:
        _kill_everything([node.pid])
        node.wait()
