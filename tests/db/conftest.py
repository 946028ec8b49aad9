"""`history(*args, db_url=...)`: a wtflow command over a record, run in this process.

Most history checks need no process of their own: main() in-process costs no interpreter start
and no import of wtflow. A reader that must lose root's permission override, or that watches
another process write, still runs `python -m wtflow` (tests/db/test_read.py's `wtflow`).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import Run, wtflow  # noqa: F401 (the in-process runner, as a fixture here too)

History = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def history(wtflow: Run) -> History:  # noqa: F811
    """Like subprocess.run of `python -m wtflow *args` with WTFLOW_DB_URL=db_url (None: unset)."""

    def run(
        *args: str, db_url: str | None, cwd: Path | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        environ = {**os.environ, "NO_COLOR": "1", **env}
        if db_url is not None:
            environ["WTFLOW_DB_URL"] = db_url
        outcome = wtflow(*args, env=environ, cwd=cwd)
        return subprocess.CompletedProcess(list(args), outcome.code, outcome.out, outcome.err)

    return run
