"""Choosing where nodes run ([run] executor, WTFLOW_EXECUTOR, --executor) and Node.resources:
validated before anything runs; no dask needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import config
from wtflow import Command, Config, Node
from wtflow.cli import main
from wtflow.errors import ConfigError, WorkflowError
from wtflow.executors import default_executor
from wtflow.executors.local import LocalExecutor


def test_local_is_the_default() -> None:
    assert Config.load(environ={}).run.executor == "local"
    assert isinstance(default_executor(Config.load(environ={})), LocalExecutor)


@pytest.mark.parametrize("value", ["tcp://scheduler:8786", "tls://10.0.0.1:8786", "inproc://x", "LOCAL"])
def test_a_scheduler_address_or_local_is_taken(value: str) -> None:
    expected = "local" if value == "LOCAL" else value
    assert Config.load(environ={"WTFLOW_EXECUTOR": value}).run.executor == expected


@pytest.mark.parametrize("value", ["dask", "scheduler:8786", "http://x:8786", "tcp://"])
def test_a_bad_executor_names_variable_value_and_fix(value: str) -> None:
    with pytest.raises(
        ConfigError, match=rf"^WTFLOW_EXECUTOR='{value}' is not an executor; use local, or a Dask"
    ):
        Config.load(environ={"WTFLOW_EXECUTOR": value})


def test_the_ini_key_and_the_flag(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    ini = tmp_path / "w.ini"
    ini.write_text("[run]\nexecutor = tcp://here:8786\n")
    assert Config.from_ini(ini, environ={}).run.executor == "tcp://here:8786"
    (tmp_path / "wtfile.py").write_text(
        "import wtflow\n@wtflow.workflow\ndef w():\n    return wtflow.Node(name='r')\n"
    )
    assert main(["run", "--executor", "nowhere"]) == 2
    err = capfd.readouterr().err
    assert err.startswith("wtflow: error: --executor='nowhere' is not an executor; use local")
    assert len(err.splitlines()) == 1


def test_an_unreachable_scheduler_is_a_usage_error_before_anything_runs(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("distributed", reason="dask.distributed is not installed")
    marker = tmp_path / "ran"
    (tmp_path / "wtfile.py").write_text(
        f"import wtflow\n@wtflow.workflow\ndef w():\n"
        f"    return wtflow.Node(name='r', executable=wtflow.Command('touch {marker}'))\n"
    )
    # A port nothing listens on: the connection is refused at once.
    assert main(["--db-url", "", "run", "--executor", "tcp://127.0.0.1:9"]) == 2
    err = capfd.readouterr().err
    assert "wtflow: error: executor 'tcp://127.0.0.1:9': cannot reach the Dask scheduler" in err
    assert not marker.exists()


@pytest.mark.parametrize("bad", [{"GPU": 0}, {"GPU": True}, {"": 1}, ["GPU"], {"GPU": "1"}])
def test_bad_resources_name_the_node_and_the_fix(bad: object) -> None:
    with pytest.raises(WorkflowError, match=r"^node 'n': resources=.* is not a mapping of resource names"):
        Node(name="n", executable=Command("true"), resources=bad)  # type: ignore[arg-type]


def test_resources_are_ignored_by_the_local_executor(tmp_path: Path) -> None:
    from wtflow import Engine, Workflow

    node = Node(name="n", executable=Command("echo ran"), resources={"GPU": 1})
    assert Engine(Workflow(name="w", root=node), config(tmp_path)).run() == 0
    assert node.stdout_artifact.data == b"ran\n"


def test_max_parallel_left_at_its_default_becomes_the_executors_capacity() -> None:
    from wtflow import plan

    default = Config.load(environ={})
    assert plan.slots(default, None) == default.run.max_parallel
    assert plan.slots(default, 3) == 3
    chosen = Config.load(environ={"WTFLOW_MAX_PARALLEL": "5"})
    assert plan.slots(chosen, 3) == 3  # never more than the cluster runs at once
    assert plan.slots(chosen, 16) == 5
