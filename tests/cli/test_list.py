"""`wtflow list` and discovery: -f file or folder, naming, and wtfile errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
        {"name": "build-all", "nodes": 2, "source": f"{path}:build_all", "params": []},
        {"name": "deploy", "nodes": 1, "source": f"{path}:_deploy", "params": []},
    ]


def test_list_without_workflows_says_so(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile("X = 1\n")
    assert wtflow("list").out == "No workflows found.\n"


def test_file_option_takes_a_folder_and_loads_every_wtfile_below_it(
    wtflow: Run, wtfile: WtfileWriter
) -> None:
    wtfile('@wtflow.workflow\ndef one():\n    return wtflow.Node(name="x")\n', name="flows/a_wtfile.py")
    wtfile('@wtflow.workflow\ndef two():\n    return wtflow.Node(name="y")\n', name="flows/sub/wtfile.py")
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
    for name in ("flows/a_wtfile.py", "flows/b_wtfile.py"):
        wtfile('@wtflow.workflow\ndef ci():\n    return wtflow.Node(name="x")\n', name=name)
    result = wtflow("-f", "flows", "list")
    assert result.code == 2
    assert result.err.count("\n") == 1, result
    assert f"{tmp_path}/flows/a_wtfile.py:ci" in result.err, result
    assert f"{tmp_path}/flows/b_wtfile.py:ci" in result.err, result


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


@pytest.mark.parametrize(
    ("body", "shown"),
    [("sys.exit(0)", "SystemExit: 0"), ("raise Stop('x')", "Stop: x")],
)
def test_workflow_function_calling_sys_exit_is_a_usage_error_not_a_silent_exit(
    wtflow: Run, wtfile: WtfileWriter, body: str, shown: str
) -> None:
    """Nor is a BaseException of its own a traceback of wtflow's."""
    wtfile(f"class Stop(BaseException):\n    pass\n\n@wtflow.workflow\ndef ci():\n    {body}\n")
    for args in (("list",), ("run",)):
        result = wtflow(*args)
        assert result.code == 2, result
        assert "workflow 'ci' (" in result.err
        assert "raised while building its tree" in result.err
        assert shown in result.err, result
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


ONE = '@wtflow.workflow\ndef {name}():\n    return wtflow.Node(name="x")\n'


def test_folder_may_be_dot_dotdot_or_inside_a_hidden_folder(
    wtflow: Run, wtfile: WtfileWriter, tmp_path: Path
) -> None:
    """Regression test: any dot in the folder's full path hid every file below it."""
    wtfile(ONE.format(name="top"))
    wtfile(ONE.format(name="hidden_parent"), name=".github/flows/wtfile.py")
    wtfile(ONE.format(name="hidden_below"), name=".github/flows/.cache/wtfile.py")
    (tmp_path / "sub").mkdir()
    assert wtflow("-f", ".github/flows", "list").out == "Found 1 workflow(s):\n- hidden-parent (1 node)\n"
    assert wtflow("-f", "..", "list", cwd=tmp_path / "sub").out == "Found 1 workflow(s):\n- top (1 node)\n"
    assert wtflow("-f", ".", "list").out == "Found 1 workflow(s):\n- top (1 node)\n"


def test_folder_imports_only_wtfiles_and_says_what_it_skipped(
    wtflow: Run, wtfile: WtfileWriter, tmp_path: Path
) -> None:
    """A script that runs a pipeline at import sits beside the wtfile; it is never imported."""
    wtfile(ONE.format(name="ci"), name="flows/wtfile.py")
    wtfile(f"open({str(tmp_path / 'ran')!r}, 'w').close()\n", name="flows/run_pipeline.py")
    result = wtflow("-v", "-f", "flows", "list")
    assert (result.code, result.out) == (0, "Found 1 workflow(s):\n- ci (1 node)\n")
    assert "wtflow: skipped flows/run_pipeline.py: not named like *wtfile*.py\n" in result.err
    assert not (tmp_path / "ran").exists()


def test_one_broken_wtfile_does_not_hide_the_others(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile(ONE.format(name="good"), name="flows/a_wtfile.py")
    wtfile(ONE.format(name="lost") + "raise SystemExit('oops')\n", name="flows/b_wtfile.py")
    wtfile(
        '@wtflow.workflow\ndef bad_tree():\n    return wtflow.Node(name="x", retries=-1)\n',
        name="flows/c_wtfile.py",
    )
    result = wtflow("-f", "flows", "list")
    assert (result.code, result.out) == (2, "Found 1 workflow(s):\n- good (1 node)\n")
    assert "wtflow: error: wtfile 'flows/b_wtfile.py' failed to import" in result.err, result
    assert "wtflow: error: workflow 'bad-tree' (" in result.err, result


def test_a_positional_path_works_like_file(wtflow: Run, wtfile: WtfileWriter, tmp_path: Path) -> None:
    wtfile(ONE.format(name="ci"), name="ci/wtfile.py")
    wtfile(ONE.format(name="other"), name="ci/more_wtfile.py")
    assert wtflow("list", "ci").out == "Found 2 workflow(s):\n- other (1 node)\n- ci (1 node)\n"
    assert wtflow("list", "ci/more_wtfile.py").out == "Found 1 workflow(s):\n- other (1 node)\n"
    ran = wtflow("run", "ci/more_wtfile.py", "other", "--console", "plain")
    assert ran.code == 0, ran
    assert "other" in ran.err
    # A workflow named like a folder beside ./wtfile.py is still a workflow name.
    wtfile(
        '@wtflow.workflow\ndef ci():\n    return wtflow.Node(name="x", executable=wtflow.Command("echo from-top"))\n'
    )
    assert "from-top" in wtflow("run", "ci", "--console", "plain").out
    both = wtflow("-f", "wtfile.py", "list", "ci/")
    assert (both.code, both.err.count("\n")) == (0, 0)  # -f left at its default is not a conflict
    conflict = wtflow("-f", "ci/wtfile.py", "run", "ci/more_wtfile.py")
    assert (conflict.code, conflict.err) == (
        2,
        "wtflow: error: both -f 'ci/wtfile.py' and the path 'ci/more_wtfile.py' were given; pass one of them\n",
    )
    # With -f given, a bare word is a workflow name even where a folder of that name exists.
    (tmp_path / "wtfile.py").unlink()
    named = wtflow("-f", "ci/more_wtfile.py", "run", "ci", "--dry-run")
    assert (named.code, named.err) == (
        2,
        "wtflow: error: workflow 'ci' not found in ci/more_wtfile.py; available: other; to load 'ci' pass it with -f\n",
    )
    missing = wtflow("list", "nowhere/")
    assert (missing.code, missing.err) == (
        2,
        "wtflow: error: wtfile 'nowhere/' does not exist; pass an existing .py file or folder\n",
    )


def test_a_function_may_return_a_list_of_nodes(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile(
        "@wtflow.workflow\ndef steps():\n"
        "    return [wtflow.Node(name=n, executable=wtflow.Command(f'echo {n}')) for n in ('a', 'b')]\n"
    )
    assert wtflow("list").out == "Found 1 workflow(s):\n- steps (3 nodes)\n"
    result = wtflow("run", "steps", "--dry-run")
    assert result.out == (
        "Workflow: steps\n- steps\n  - a  run: not resuming a run\n      $ echo a\n"
        "  - b  run: not resuming a run\n      $ echo b\n"
    )


def test_a_returned_workflow_is_listed_and_run_under_its_own_name(wtflow: Run, wtfile: WtfileWriter) -> None:
    """Regression test: `list` showed the function's name and `run <workflow name>` said not found."""
    wtfile(
        "@wtflow.workflow\ndef make_it():\n"
        "    return wtflow.Workflow(name='release', root=wtflow.Node(name='r', executable=wtflow.Command('echo rel')))\n"
        "@wtflow.workflow(name='renamed')\ndef other():\n"
        "    return wtflow.Workflow(name='inner', root=wtflow.Node(name='r', executable=wtflow.Command('echo ren')))\n"
    )
    assert wtflow("list").out == "Found 2 workflow(s):\n- release (1 node)\n- renamed (1 node)\n"
    result = wtflow("run", "release", "--console", "plain")
    assert result.code == 0, result
    assert "wtflow: release succeeded" in result.err, result
    assert wtflow("run", "renamed", "--dry-run").out.startswith("Workflow: renamed\n")


def test_an_invalid_tree_names_the_workflow_once(wtflow: Run, wtfile: WtfileWriter, tmp_path: Path) -> None:
    """Regression test: `workflow 'dup' (...): workflow 'dup': ...`."""
    wtfile(
        "@wtflow.workflow\ndef dup():\n    n = wtflow.Node(name='n')\n    return wtflow.Node(name='r', children=[n, n])\n"
    )
    result = wtflow("list")
    assert result.code == 2
    assert result.err == (
        f"wtflow: error: workflow 'dup' ({tmp_path}/wtfile.py:dup): node 'n' is placed twice "
        "(at r/n and r/n-2); create a separate Node for each place\n"
    )


def test_a_workflow_with_a_required_parameter_is_listed_with_what_it_needs(
    wtflow: Run, wtfile: WtfileWriter
) -> None:
    """Its tree depends on the value, so list says how to give one rather than call it without."""
    wtfile('@wtflow.workflow\ndef deploy(env: str, replicas: int = 1):\n'
           '    return wtflow.Node(name=env, executable=wtflow.Command("true"))\n')  # fmt: skip
    result = wtflow("list")
    assert (result.code, result.err) == (0, "")
    assert result.out == (
        "Found 1 workflow(s):\n- deploy (nodes known with -p env=VALUE)  params: env: str, replicas: int = 1\n"
    )
    [row] = json.loads(wtflow("list", "--json").out)
    assert (row["name"], row["nodes"]) == ("deploy", None)
