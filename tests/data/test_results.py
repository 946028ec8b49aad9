"""A PyFunc's return value is its node's `result` artifact: saved as JSON, handed on, recorded, shown."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import config, wf
from wtflow import Artifact, Engine, Node, PyFunc


def start() -> dict[str, Any]:
    return {"n": 1, "items": ["a"]}


def grow(previous: Artifact) -> dict[str, Any]:
    value = previous.value
    assert json.loads(previous.data) == value  # .data is the JSON bytes
    return {"n": value["n"] + 1, "items": [*value["items"], chr(ord("a") + value["n"])]}


async def grow_async(previous: Artifact) -> dict[str, Any]:
    await asyncio.sleep(0)
    return grow(previous)


def check(previous: Artifact) -> None:
    print(json.dumps(previous.value))


def test_a_result_is_handed_through_three_nodes(tmp_path: Path) -> None:
    first = Node("first", PyFunc(func=start))
    second = Node("second", PyFunc(func=grow, args=(first.result_artifact,)))
    third = Node("third", PyFunc(func=grow_async, kwargs={"previous": second.result_artifact}))
    last = Node("last", PyFunc(func=check, args=(third.result_artifact,)))
    engine = Engine(wf(first, second, third, last), config(tmp_path))
    assert engine.run() == 0
    assert json.loads(last.stdout_artifact.data) == {"n": 3, "items": ["a", "b", "c"]}
    assert third.result_artifact.path == third.stdout_artifact.path.parent / "result.json"
    assert third.result_artifact.value == {"n": 3, "items": ["a", "b", "c"]}
    assert not (last.stdout_artifact.path.parent / "result.json").exists()  # None is no result


def test_a_value_json_cannot_hold_fails_the_node_naming_its_type(tmp_path: Path) -> None:
    node = Node("dates", PyFunc(func=lambda: {"when": date(2026, 1, 1)}))
    assert Engine(wf(node), config(tmp_path)).run() == 1
    assert node.status == "failed"
    message = node.stderr_artifact.text()
    assert "cannot be saved as JSON" in message
    assert "datetime.date is not JSON" in message, message
    assert not (node.stdout_artifact.path.parent / "result.json").exists()


def test_a_node_returning_nodes_is_not_a_result(tmp_path: Path) -> None:
    node = Node("maker", PyFunc(func=lambda: [Node("child")]))
    assert Engine(wf(node), config(tmp_path)).run() == 0
    assert not (node.stdout_artifact.path.parent / "result.json").exists()


def test_show_abridges_the_result_and_json_has_it_whole(tmp_path: Path, db_url: str) -> None:
    big = {"numbers": list(range(200))}
    node = Node("numbers", PyFunc(func=lambda: big))
    assert Engine(wf(node), config(tmp_path, db__url=db_url)).run() == 0
    env = {**os.environ, "WTFLOW_DB_URL": db_url, "NO_COLOR": "1"}

    def show(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "wtflow", "show", *args], capture_output=True,
                              text=True, env=env, timeout=60, check=True)  # fmt: skip
        return done.stdout

    text = show()
    line = next(line for line in text.splitlines() if "result:" in line)
    assert line.strip().startswith('result: {"numbers": [0, 1, 2,')
    assert line.endswith("...")
    assert len(line.strip()) <= 108
    shape = json.loads(show("--json"))
    numbers = next(n for n in shape["nodes"] if n["name"] == "numbers")
    assert numbers["result"] == big
    result = numbers["attempts"][0]["outputs"]["result"]
    assert result["kind"] == "result"
    assert len(result["sha256"]) == 64
    assert result["size"] == len(json.dumps(big))


def result_then_none() -> dict[str, int] | None:
    """Attempt 1 returns a value but leaves its declared report unmade (so it fails); attempt 2
    makes the report and returns nothing."""
    if os.environ["WTFLOW_ATTEMPT"] == "1":
        return {"attempt": 1}
    Path("report.txt").write_text("ok\n")
    return None


def test_a_retry_that_returns_nothing_hands_on_no_earlier_result(tmp_path: Path, db_url: str) -> None:
    """Regression: the handle kept pointing at attempt 1's result.json, so a later node read a
    value the node's last attempt never returned."""
    from wtflow import WtflowError

    flaky = Node("flaky", PyFunc(func=result_then_none), retries=1, retry_delay=0,
                 artifacts=[Artifact("report", file_path="report.txt")])  # fmt: skip
    reader = Node("reader", PyFunc(func=check, args=(flaky.result_artifact,)), allow_failure=True)
    assert Engine(wf(flaky, reader), config(tmp_path, db__url=db_url)).run() == 0
    assert (flaky.status, flaky.attempts) == ("succeeded", 2)
    # Attempt 1's result stays in its folder, for the post-mortem; the handle is not on it.
    assert (flaky.stdout_artifact.path.parent.parent / "result.json").exists()
    with pytest.raises(WtflowError, match="has not been produced"):
        flaky.result_artifact.path  # noqa: B018
    assert reader.status == "failed"
    assert "has not been produced" in reader.stderr_artifact.text()
    assert '{"attempt": 1}' not in reader.stdout_artifact.text()
    assert flaky.artifact("report").path.read_text() == "ok\n"
    env = {**os.environ, "WTFLOW_DB_URL": db_url, "NO_COLOR": "1"}
    done = subprocess.run([sys.executable, "-m", "wtflow", "show", "--json"], capture_output=True, text=True,
                          env=env, timeout=60, check=True)  # fmt: skip
    [shown] = [n for n in json.loads(done.stdout)["nodes"] if n["name"] == "flaky"]
    assert "result" not in shown
    assert [sorted(a["outputs"]) for a in shown["attempts"]] == [["result", "stderr", "stdout"],
                                                                ["report/report.txt", "stderr", "stdout"]]  # fmt: skip
