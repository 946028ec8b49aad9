"""Drive the real `wtflow` executable in subprocesses; nothing here calls main() in-process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

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
def wtflow(tmp_path: Path) -> Run:
    """`wtflow(*args, env=..., cwd=...)` runs the command to its end and returns an Outcome."""

    def run(
        *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60
    ) -> Outcome:
        argv = [*WTFLOW, *args]
        proc = subprocess.run(
            argv,
            cwd=cwd or tmp_path,
            env=env if env is not None else cli_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=timeout,  # a hang guard, not a speed claim
            check=False,
        )
        return Outcome(proc.returncode, proc.stdout, proc.stderr, list(args))

    return run


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
