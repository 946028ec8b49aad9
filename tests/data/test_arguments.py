"""An artifact in a Command's argv or in a node's env is replaced by its file's path when the node starts."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import config, wf
from wtflow import Command, Engine, Node, PyFunc


def test_an_artifact_in_argv_and_env_is_its_path(tmp_path: Path) -> None:
    lines = Node("lines", Command("printf 'a\\nb\\nc\\n'"))
    count = Node("count", Command(["wc", "-l", lines.stdout_artifact]))
    env = Node("env", Command('cat "$INPUT"'), env={"INPUT": lines.stdout_artifact})
    assert Engine(wf(lines, count, env), config(tmp_path)).run() == 0
    assert count.stdout_artifact.text() == f"3 {lines.stdout_artifact.path}\n"
    assert env.stdout_artifact.text() == "a\nb\nc\n"
    assert count.executable is not None
    assert count.executable.describe() == "wc -l '<stdout of '\"'\"'lines'\"'\"'>'"


def test_a_command_reading_a_parallel_siblings_output_waits_for_it(tmp_path: Path) -> None:
    # Without the wait the reader would start at once, reading a file still empty.
    first = Node("first", PyFunc(func=print, args=("from first",)))
    second = Node("second", Command(["cat", first.stdout_artifact]))
    assert Engine(wf(second, first, parallel=True), config(tmp_path)).run() == 0
    assert second.stdout_artifact.text() == "from first\n"
