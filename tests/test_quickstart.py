"""The README's quick start is a test: its output must be exactly what the README says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
QUICKSTART = ROOT / "examples" / "quickstart.py"
README = ROOT / "README.md"


def test_quickstart_is_the_readme_block_byte_for_byte() -> None:
    section = README.read_text().split("\n## Quick Start\n", 1)[1]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert block.startswith("# main.py\n")  # the block the README's output belongs to
    assert QUICKSTART.read_text() == block


@pytest.mark.parametrize("db", ["default", "off"])
def test_quickstart_prints_exactly_the_readme_lines(tmp_path: Path, db: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    if db == "off":
        env["WTFLOW_DB_URL"] = ""
    result = subprocess.run(
        [sys.executable, str(QUICKSTART)], cwd=tmp_path, env=env, capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == (
        b"Starting workflow\nSTDOUT\nprocessing stdout: b'STDOUT\\n'\nprocessing stderr: b'STDERR\\n'\n"
    )
    assert result.stderr == b"STDERR\n"


def test_quickstart_output_merged_reads_like_the_readme(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, str(QUICKSTART)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
    )  # fmt: skip
    lines = result.stdout.decode().splitlines()
    assert sorted(lines) == sorted(
        [
            "Starting workflow",
            "STDOUT",
            "STDERR",
            "processing stdout: b'STDOUT\\n'",
            "processing stderr: b'STDERR\\n'",
        ]
    )
    assert lines[0] == "Starting workflow"
    assert lines[-2:] == ["processing stdout: b'STDOUT\\n'", "processing stderr: b'STDERR\\n'"]
