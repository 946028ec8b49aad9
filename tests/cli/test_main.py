"""The command itself: --version, python -m wtflow, --help with examples, internal errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import Run, WtfileWriter, cli_env


def test_version(wtflow: Run) -> None:
    result = wtflow("--version")
    assert (result.code, result.out) == (0, "wtflow 0.1.0\n")


def test_python_dash_m_runs_the_same_command(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "wtflow", "--version"],
        capture_output=True,
        text=True,
        env=cli_env(tmp_path),
        check=False,
    )
    assert (proc.returncode, proc.stdout) == (0, "wtflow 0.1.0\n")


@pytest.mark.parametrize("command", [(), ("list",), ("run",)])
def test_help_on_every_command_has_an_example(wtflow: Run, command: tuple[str, ...]) -> None:
    result = wtflow(*command, "--help")
    assert result.code == 0
    assert "examples:\n  wtflow " in result.out


def test_no_command_is_a_usage_error(wtflow: Run) -> None:
    result = wtflow()
    assert result.code == 2
    assert "the following arguments are required: COMMAND" in result.err


SABOTAGE = """
import wtflow.engine

def broken_run(self):
    raise RuntimeError("engine exploded")

wtflow.engine.Engine.run = broken_run  # stands in for a bug in wtflow itself

@wtflow.workflow
def ci():
    return wtflow.Node(name="x", executable=wtflow.Command("true"))
"""


def test_internal_error_writes_a_crash_log_and_prints_one_line(wtflow_exe: Run, wtfile: WtfileWriter) -> None:
    wtfile(SABOTAGE)
    result = wtflow_exe("run")
    assert result.code == 3
    assert result.err.count("\n") == 1, result
    assert result.err.startswith(
        "wtflow: internal error (RuntimeError: engine exploded); traceback saved to "
    )
    log = Path(result.err.split("traceback saved to ")[1].split(";")[0])
    try:
        assert "Traceback (most recent call last)" in log.read_text()
        assert "RuntimeError: engine exploded" in log.read_text()
    finally:
        log.unlink()


def test_wtflow_debug_lets_the_traceback_through(
    wtflow_exe: Run, wtfile: WtfileWriter, tmp_path: Path
) -> None:
    wtfile(SABOTAGE)
    result = wtflow_exe("run", env=cli_env(tmp_path, WTFLOW_DEBUG="1"))
    assert result.code == 1  # Python's own exit code for an uncaught exception
    assert result.err.startswith("Traceback (most recent call last)"), result


def test_closed_stdout_is_not_a_crash(tmp_path: Path, wtfile: WtfileWriter) -> None:
    # A listing of ~250 KB, far more than a pipe (64 KB) and the reader's buffer hold: wtflow is
    # still writing when the read end closes, however early or late that comes.
    wtfile(
        "\n".join(
            f"@wtflow.workflow(name='w{i}')\ndef w{i}():\n    return wtflow.Node(name='x')\n"
            for i in range(20)
        )
    )
    from tests.cli.conftest import WTFLOW

    # The reader is gone before the first line is written (as `wtflow list | head -1` ends up
    # once head has its line): every write fails, however small the listing.
    read_end, write_end = os.pipe()
    os.close(read_end)
    with os.fdopen(write_end, "wb") as stdout:
        lister = subprocess.Popen(
            [*WTFLOW, "list"], cwd=tmp_path, env=cli_env(tmp_path), stdout=stdout, stderr=subprocess.PIPE
        )
    _, err = lister.communicate(timeout=60)
    assert (lister.returncode, err) == (141, b"")
