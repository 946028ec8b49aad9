"""Workflow parameters: `-p NAME=VALUE` and `WTFLOW_PARAM_<NAME>`, parsed by the function's type hints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WTFILE = """
import datetime, enum, json, pathlib
from typing import Literal
import wtflow

class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"

@wtflow.workflow
def deploy(env: str = "dev", replicas: int = 1, ratio: float = 0.5, dry: bool = False,
           where: pathlib.Path = pathlib.Path("."), color: Color = Color.RED,
           mode: Literal["fast", "safe"] = "safe", shards: list[int] = [1, 2],
           day: datetime.date = datetime.date(2024, 1, 1)):
    shown = {"env": env, "replicas": replicas, "ratio": ratio, "dry": dry, "where": str(where),
             "color": color.name, "mode": mode, "types": [type(v).__name__ for v in (replicas, ratio, dry)]}
    return wtflow.Node("deploy", wtflow.Command(["echo", json.dumps(shown)]))
"""


def wtflow(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "wtfile.py").write_text(WTFILE)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("WTFLOW_")}
    environ.update(env, WTFLOW_DB_URL=f"sqlite:///{tmp_path / 'w.db'}", NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", "wtflow", *args], cwd=tmp_path, capture_output=True,
                          text=True, env=environ, timeout=60)  # fmt: skip


def test_every_supported_type_is_parsed_and_recorded(tmp_path: Path) -> None:
    done = wtflow(tmp_path, "run", "deploy", "--console", "raw", "-p", "env=prod", "-p", "replicas=3",
                  "-p", "ratio=0.25", "-p", "dry=yes", "--param", "where=/srv", "-p", "color=blue",
                  "-p", "mode=fast")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[0]) == {
        "env": "prod", "replicas": 3, "ratio": 0.25, "dry": True, "where": "/srv", "color": "BLUE",
        "mode": "fast", "types": ["int", "float", "bool"],
    }  # fmt: skip
    shape = json.loads(wtflow(tmp_path, "show", "--json").stdout)
    assert shape["params"] == {"env": "prod", "replicas": 3, "ratio": 0.25, "dry": True, "where": "/srv",
                               "color": "BLUE", "mode": "fast"}  # fmt: skip
    assert "params  env=prod replicas=3" in wtflow(tmp_path, "show").stdout


def test_the_environment_sets_a_parameter_and_a_flag_wins(tmp_path: Path) -> None:
    done = wtflow(tmp_path, "run", "--console", "raw", "-p", "env=prod", WTFLOW_PARAM_REPLICAS="7",
                  WTFLOW_PARAM_ENV="staging")  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout.splitlines()[0])
    assert (shown["env"], shown["replicas"]) == ("prod", 7)


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("replicas=three", "parameter replicas (int) -p replicas='three' is not an int"),
        ("ratio=x", "parameter ratio (float) -p ratio='x' is not a float"),
        ("dry=maybe", "parameter dry (bool) -p dry='maybe' is not a bool"),
        ("color=green", "parameter color (Color (RED, BLUE)) -p color='green' is not a Color (RED, BLUE)"),
        ("mode=slow", "parameter mode (one of 'fast', 'safe') -p mode='slow' is not one of 'fast', 'safe'"),
        (
            "shards=3,4",
            "parameter shards (list[int]) cannot be set by -p shards: only a str, int, float, "
            "bool, Path, Enum or Literal parameter can; give it one of those types",
        ),
        ("day=2024-02-02", "parameter day (date) cannot be set by -p day"),
        ("size=3", "parameter size is not a parameter of deploy; parameters: env: str = 'dev'"),
        ("env", "-p 'env' is not NAME=VALUE"),
    ],
)
def test_a_bad_parameter_is_one_line_and_exit_2(tmp_path: Path, flag: str, message: str) -> None:
    done = wtflow(tmp_path, "run", "-p", flag)
    assert done.returncode == 2
    assert done.stderr.startswith(f"wtflow: error: {message}"), done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_list_shows_each_workflows_parameters(tmp_path: Path) -> None:
    out = wtflow(tmp_path, "list").stdout
    assert "- deploy (1 node)  params: env: str = 'dev', replicas: int = 1, ratio: float = 0.5" in out
    assert "color: Color (RED, BLUE) = 'RED', mode: one of 'fast', 'safe' = 'safe'" in out
