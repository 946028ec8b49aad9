"""`wtflow run` options of a richer tree: --fail-fast, --deadline."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Run, WtfileWriter, cli_env

# "slow" would take a minute; "fails" waits until slow has printed, so slow is surely running.
RACE = """
@wtflow.workflow
def ci():
    return wtflow.Node(name="ci", parallel=True, children=[
        wtflow.Node(name="slow", executable=wtflow.Command("echo up; exec sleep 60")),
        wtflow.Node(name="fails", executable=wtflow.Command(
            'until [ -s "$WTFLOW_ARTIFACTS/../slow/stdout" ]; do sleep 0.01; done; exit 3')),
    ])
"""


@pytest.mark.parametrize("how", ["flag", "env", "ini"])
def test_fail_fast_for_the_whole_run(wtflow: Run, wtfile: WtfileWriter, tmp_path: Path, how: str) -> None:
    wtfile(RACE)
    (tmp_path / "wtflow.ini").write_text("[run]\nfail_fast = yes\n" if how == "ini" else "")
    env = cli_env(tmp_path, **({"WTFLOW_FAIL_FAST": "1"} if how == "env" else {}))
    result = wtflow("run", *(["--fail-fast"] if how == "flag" else []), "--console", "plain", env=env)
    assert result.code == 1, result
    assert "<== ci/slow cancelled" in result.out
    assert ": 1 failed, 1 cancelled; output in " in result.err


HANGS = """
@wtflow.workflow
def ci():
    return wtflow.Node(name="ci", children=[
        wtflow.Node(name="hangs", executable=wtflow.Command("exec sleep 60")),
        wtflow.Node(name="later", executable=wtflow.Command("echo never")),
        wtflow.Node(name="cleanup", executable=wtflow.Command("echo cleaned"), always=True),
    ])
"""


@pytest.mark.parametrize("how", ["flag", "env"])
def test_the_deadline_stops_the_run_and_names_itself(
    wtflow: Run, wtfile: WtfileWriter, tmp_path: Path, how: str
) -> None:
    wtfile(HANGS)
    env = cli_env(tmp_path, **({"WTFLOW_DEADLINE": "0.5"} if how == "env" else {}))
    result = wtflow("run", *(["--deadline", "0.5"] if how == "flag" else []), "--console", "plain", env=env)
    assert result.code == 1, result
    assert "<== ci/hangs timed_out" in result.out
    assert "[ci/cleanup] cleaned" in result.out
    assert "never" not in result.out
    assert "wtflow: ci: the run's deadline of 0.5s (run.deadline) passed; " in result.err
