"""Same-named siblings: each has its own folder, record row, artifacts, and path for logs and --only."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Run, WtfileWriter, cli_env

TWINS = """
@wtflow.workflow
def pair():
    return wtflow.Node(name="root", children=[
        wtflow.Node(name="twin", executable=wtflow.Command("echo first")),
        wtflow.Node(name="twin", executable=wtflow.Command("echo second")),
    ])
"""


def test_same_named_siblings_run_with_their_own_folders_and_paths(
    wtflow: Run, wtfile: WtfileWriter, tmp_path: Path
) -> None:
    """Regression test: two children of one name were refused, as older wtflow allowed them."""
    wtfile(TWINS)
    env = cli_env(tmp_path)
    del env["WTFLOW_DB_URL"]  # recorded: the history commands find each twin by its path
    assert wtflow("run", env=env).code == 0
    latest = tmp_path / "state" / "artifacts" / "pair" / "latest" / "root"
    assert (latest / "twin" / "stdout").read_text() == "first\n"
    assert (latest / "twin-2" / "stdout").read_text() == "second\n"
    assert wtflow("logs", "last", "root/twin-2", env=env).out == "second\n"
    assert wtflow("logs", "last", "root/twin", env=env).out == "first\n"
    only = wtflow("run", "--only", "twin-2", "--console", "plain", env=env)
    assert only.code == 0, only
    assert "[root/twin-2] second" in only.out
    assert "first" not in only.out
