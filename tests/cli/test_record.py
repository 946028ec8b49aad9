"""`wtflow run` with recording on (the default): the run is in the database the history commands read.

The other CLI tests switch recording off (WTFLOW_DB_URL="") so they test the CLI alone; these
run the default configuration end to end."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

from tests.cli.conftest import WTFLOW, Run, WtfileWriter, cli_env
from tests.helpers import wait_for

CI = """
@wtflow.workflow
def ci():
    return wtflow.Node(name="ci", children=[
        wtflow.Node(name="test", executable=wtflow.Command("echo 'assert failed' >&2; exit 2")),
        wtflow.Node(name="build", executable=wtflow.Command("echo built")),
    ])
"""


def _recording_env(tmp_path: Path) -> dict[str, str]:
    env = cli_env(tmp_path)
    del env["WTFLOW_DB_URL"]  # the default: a SQLite file in the state folder
    return env


def test_default_run_is_recorded_and_listed_by_runs(
    wtflow: Run, wtfile: WtfileWriter, tmp_path: Path
) -> None:
    wtfile(CI)
    env = _recording_env(tmp_path)
    assert wtflow("run", env=env).code == 1
    assert (tmp_path / "state" / "wtflow.db").is_file()
    runs = json.loads(wtflow("runs", "--json", env=env).out)
    assert [(r["workflow"], r["status"]) for r in runs] == [("ci", "failed")]


def test_logs_of_the_last_run_are_the_nodes_output(wtflow: Run, wtfile: WtfileWriter, tmp_path: Path) -> None:
    wtfile(CI)
    env = _recording_env(tmp_path)
    wtflow("run", "-k", env=env)
    assert wtflow("logs", "last", "build", env=env).out == "built\n"
    assert wtflow("logs", "last", "test", "--stderr", env=env).out == "assert failed\n"


def test_db_url_flag_chooses_the_database_for_run_and_history(
    wtflow: Run, wtfile: WtfileWriter, tmp_path: Path
) -> None:
    wtfile(CI)
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    wtflow("--db-url", url, "run")
    runs = json.loads(wtflow("runs", "--json", "--db-url", url).out)  # global option after the command
    assert len(runs) == 1
    assert not (tmp_path / "state" / "wtflow.db").exists()


def test_ctrl_c_completes_the_record_as_cancelled(wtfile: WtfileWriter, tmp_path: Path, wtflow: Run) -> None:
    wtfile("""
    @wtflow.workflow
    def slow():
        return wtflow.Node(name="slow", executable=wtflow.Command("touch started; sleep 60"))
    """)
    env = _recording_env(tmp_path)
    proc = subprocess.Popen(
        [*WTFLOW, "run"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    wait_for((tmp_path / "started").exists, "the node to start")
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    runs = json.loads(wtflow("runs", "--json", env=env).out)
    assert [r["status"] for r in runs] == ["cancelled"]
