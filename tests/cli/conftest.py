"""Drive the `wtflow` command: `wtflow` calls main() in this process, `wtflow_exe` the real executable.

In-process runs are the default: they cost no interpreter start and no import of wtflow, and
they see exactly what the executable would (main(argv) is the whole command). The executable
is for what only a fresh process shows: signals, terminals, the crash log and tracebacks on
the way out, SIGPIPE, `python -m wtflow`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from wtflow.cli import main

BIN = Path(sys.executable).parent / "wtflow"
# The console script uv installs; `python -m wtflow` where it is missing (tests of -m use it directly).
WTFLOW = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "wtflow"]
EXAMPLES = Path(__file__).parents[2] / "examples"


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str
    argv: list[str]

    def __repr__(self) -> str:  # what pytest shows when an assert on it fails
        return f"Outcome(code={self.code}, argv={self.argv})\n--- stdout\n{self.out}--- stderr\n{self.err}"


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a CLI run: no colour forcing, state under tmp_path, recording off.

    These tests are about the command line, so they skip the record's set-up;
    tests/cli/test_record.py runs the default configuration, recording on."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TERM")}
    env.update({"WTFLOW_DB_URL": "", "WTFLOW_STATE_DIR": str(tmp_path / "state")})
    env.update(extra)
    return env


Run = Callable[..., Outcome]


@pytest.fixture
def wtflow(tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """`wtflow(*args, env=..., cwd=...)` runs main([*args]) to its end and returns an Outcome.

    The environment and working folder are the command's for the call only; capfd reads what
    reached file descriptors 1 and 2, as a pipe would."""

    def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Outcome:
        environ = env if env is not None else cli_env(tmp_path)
        with monkeypatch.context() as scope:
            for name in set(os.environ) - set(environ):
                scope.delenv(name)
            for name, value in environ.items():
                scope.setenv(name, value)
            scope.chdir(cwd or tmp_path)
            capfd.readouterr()  # what came before is not this command's output
            with _forgetting_wtfiles(tmp_path):
                code = _exit_code(list(args))
            out, err = capfd.readouterr()
        return Outcome(code, out, err, list(args))

    return run


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse: --help, --version, usage errors
        return e.code if isinstance(e.code, int) else 0 if e.code is None else 1


@pytest.fixture
def wtflow_exe(tmp_path: Path) -> Run:
    """`wtflow_exe(*args, env=..., cwd=...)` runs the real executable in a subprocess."""

    def run(
        *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60
    ) -> Outcome:
        proc = subprocess.run(
            [*WTFLOW, *args],
            cwd=cwd or tmp_path,
            env=env if env is not None else cli_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=timeout,  # a hang guard, not a speed claim
            check=False,
        )
        return Outcome(proc.returncode, proc.stdout, proc.stderr, list(args))

    return run


@contextlib.contextmanager
def _forgetting_wtfiles(*roots: Path) -> Iterator[None]:
    """Drop the modules a command imported from the test's files, as the next process would not have them.

    discover names a wtfile's module after its file, so a later run in this process would
    otherwise find another test's wtfile.py under that name and import its own under another."""
    before = set(sys.modules)
    try:
        yield
    finally:
        for name in set(sys.modules) - before:
            file = getattr(sys.modules[name], "__file__", None)
            if file is not None and any(Path(file).is_relative_to(root) for root in (*roots, EXAMPLES)):
                del sys.modules[name]


WtfileWriter = Callable[..., Path]


@pytest.fixture
def wtfile(tmp_path: Path) -> WtfileWriter:
    """Write `source` (dedented, with `import wtflow` on top) to tmp_path/<name>."""

    def write(source: str, name: str = "wtfile.py") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("import sys\n\nimport wtflow\n\n" + textwrap.dedent(source))
        return path

    return write
