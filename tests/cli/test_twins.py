"""Same-named siblings: each has its own folder, record row, artifacts, and path for logs and --only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import Run, WtfileWriter, cli_env
from wtflow.db.read import NodeInfo, find_node
from wtflow.errors import LookupFailed

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
    assert wtflow("logs", "last", "twin-2", env=env).out == "second\n"  # a folder name, like a name
    only = wtflow("run", "--only", "twin-2", "--console", "plain", env=env)
    assert only.code == 0, only
    assert "[root/twin-2] second" in only.out
    assert "first" not in only.out


def test_the_record_keeps_each_twins_own_name_beside_its_path(
    wtflow: Run, wtfile: WtfileWriter, tmp_path: Path
) -> None:
    """Regression test: the second twin's record said its name was `twin-2`."""
    wtfile(TWINS)
    env = cli_env(tmp_path)
    del env["WTFLOW_DB_URL"]
    assert wtflow("run", env=env).code == 0
    nodes = json.loads(wtflow("show", "--json", env=env).out)["nodes"]
    assert [(n["name"], n["path"]) for n in nodes] == [
        ("root", "root"),
        ("twin", "root/twin"),
        ("twin", "root/twin-2"),
    ]
    shown = wtflow("show", env=env).out.splitlines()
    assert [line.split()[:2] for line in shown[-2:]] == [["twin", "succeeded"], ["twin", "[twin-2]"]]


def test_a_deeper_twin_is_found_by_its_folder_name_and_its_shared_name_is_ambiguous() -> None:
    def info(index: int, path: str, name: str) -> NodeInfo:
        return NodeInfo(index, path, name, path.count("/"), None, "command", "true", False, False,
                        "succeeded", 0, None, None)  # fmt: skip

    tree = [info(0, "root", "root"), info(1, "root/a", "a"), info(2, "root/a/twin", "twin"),
            info(3, "root/a/twin-2", "twin")]  # fmt: skip
    assert find_node(tree, "twin-2").index == 3
    assert find_node(tree, "a/twin").index == 2
    with pytest.raises(LookupFailed, match=r"'root/a/twin', 'root/a/twin-2'\); give its path"):
        find_node(tree, "twin")
