"""`wtflow list` and discovery: -f file or folder, naming, and wtfile errors."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import Run, WtfileWriter

TWO = """
@wtflow.workflow
def build_all():
    return wtflow.Node(name="root", children=[wtflow.Node(name="a", executable=wtflow.Command("true"))])

@wtflow.workflow(name="deploy")
def _deploy():
    return wtflow.Node(name="deploy", executable=wtflow.Command("true"))
"""


def test_list_prints_names_and_node_counts_in_upstream_format(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile(TWO)
    result = wtflow("list")
    assert (result.code, result.out) == (
        0,
        "Found 2 workflow(s):\n- build-all (2 nodes)\n- deploy (1 node)\n",
    )


def test_list_json_has_name_node_count_and_source(wtflow: Run, wtfile: WtfileWriter) -> None:
    path = wtfile(TWO)
    rows = json.loads(wtflow("list", "--json").out)
    assert rows == [
        {"name": "build-all", "nodes": 2, "source": f"{path}:build_all"},
        {"name": "deploy", "nodes": 1, "source": f"{path}:_deploy"},
    ]


def test_list_without_workflows_says_so(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile("X = 1\n")
    assert wtflow("list").out == "No workflows found.\n"


def test_file_option_takes_a_folder_and_loads_every_py_below_it(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile('@wtflow.workflow\ndef one():\n    return wtflow.Node(name="x")\n', name="flows/a.py")
    wtfile('@wtflow.workflow\ndef two():\n    return wtflow.Node(name="y")\n', name="flows/sub/b.py")
    assert wtflow("-f", "flows", "list").out == "Found 2 workflow(s):\n- one (1 node)\n- two (1 node)\n"


def test_global_options_also_work_after_the_command(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile('@wtflow.workflow\ndef one():\n    return wtflow.Node(name="x")\n', name="elsewhere.py")
    assert wtflow("list", "-f", "elsewhere.py").out == "Found 1 workflow(s):\n- one (1 node)\n"


def test_missing_wtfile_is_one_line_and_exit_2(wtflow: Run) -> None:
    result = wtflow("list")
    assert (result.code, result.err) == (
        2,
        "wtflow: error: wtfile 'wtfile.py' does not exist; pass an existing file or folder with -f\n",
    )


def test_same_name_in_two_files_names_both_files(wtflow: Run, wtfile: WtfileWriter, tmp_path: Path) -> None:
    for name in ("flows/a.py", "flows/b.py"):
        wtfile('@wtflow.workflow\ndef ci():\n    return wtflow.Node(name="x")\n', name=name)
    result = wtflow("-f", "flows", "list")
    assert result.code == 2
    assert result.err.count("\n") == 1, result
    assert f"{tmp_path}/flows/a.py:ci" in result.err, result
    assert f"{tmp_path}/flows/b.py:ci" in result.err, result


def test_import_error_shows_only_the_users_traceback(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile("def helper():\n    return 1 / 0\n\nhelper()\n")
    result = wtflow("list")
    assert result.code == 2
    assert result.err.startswith("wtflow: error: wtfile 'wtfile.py' failed to import:\nTraceback"), result
    assert "ZeroDivisionError: division by zero" in result.err
    assert "return 1 / 0" in result.err
    assert "importlib" not in result.err
    assert "wtflow/" not in result.err


def test_workflow_function_that_raises_shows_its_traceback_without_wtflow_frames(
    wtflow: Run, wtfile: WtfileWriter
) -> None:
    wtfile('@wtflow.workflow\ndef ci():\n    raise RuntimeError("no config for ci")\n')
    result = wtflow("list")
    assert result.code == 2
    assert "RuntimeError: no config for ci" in result.err
    assert "wtflow/" not in result.err, result


def test_invalid_tree_is_one_line_naming_the_workflow(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile('@wtflow.workflow\ndef ci():\n    return wtflow.Node(name="x", retries=-1)\n')
    result = wtflow("list")
    assert result.code == 2
    assert result.err.count("\n") == 1, result
    assert result.err.startswith("wtflow: error: workflow 'ci' ("), result
    assert "retries=-1 is not a whole number >= 0" in result.err


def test_workflow_returning_no_node_is_a_usage_error(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile("@wtflow.workflow\ndef ci():\n    pass\n")
    result = wtflow("list")
    assert result.code == 2
    assert "returned None, not a Node" in result.err
