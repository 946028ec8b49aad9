"""`wtflow run`: choosing workflows, the flags for settings people change per run, exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.cli.conftest import Run, WtfileWriter, cli_env

CI = """
@wtflow.workflow
def ci():
    return wtflow.Node(name="ci", children=[
        wtflow.Node(name="checks", parallel=True, children=[
            wtflow.Node(name="lint", executable=wtflow.Command("echo lint ok")),
            wtflow.Node(name="test", executable=wtflow.Command("echo tests ok")),
        ]),
        wtflow.Node(name="build", executable=wtflow.Command("echo built")),
    ])
"""

FAILING = """
@wtflow.workflow
def ci():
    return wtflow.Node(name="ci", children=[
        wtflow.Node(name="test", executable=wtflow.Command("echo collected 3; echo 'AssertionError: 1 != 2' >&2; exit 4")),
        wtflow.Node(name="after", executable=wtflow.Command("echo after ran")),
    ])
"""

SEVERAL = """
@wtflow.workflow
def first_one():
    return wtflow.Node(name="a", executable=wtflow.Command("echo ran first"))

@wtflow.workflow
def second():
    return wtflow.Node(name="b", executable=wtflow.Command("echo ran second"))

@wtflow.workflow
def broken():
    return wtflow.Node(name="c", executable=wtflow.Command("exit 1"))
"""


def test_the_only_workflow_runs_without_a_name(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile(CI)
    result = wtflow("run")
    assert result.code == 0, result
    assert "[ci/checks/lint] lint ok\n" in result.out
    assert "[ci/build] built\n" in result.out


def test_plain_output_has_start_and_end_lines_per_node(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile(CI)
    out = wtflow("run").out
    assert (
        out.index("==> ci/build started")
        < out.index("[ci/build] built")
        < out.index("<== ci/build succeeded")
    )


def test_summary_line_on_stderr_has_counts_duration_and_run_dir(
    wtflow: Run, wtfile: WtfileWriter, tmp_path: Path
) -> None:
    wtfile(CI)
    err = wtflow("run").err
    match = re.fullmatch(r"wtflow: ci succeeded in [\d.]+s: 3 succeeded; output in (\S+)\n", err)
    assert match, err
    assert (tmp_path / match[1] / "ci" / "build" / "stdout").read_text() == "built\n"


def test_failed_node_exits_1_and_the_summary_shows_its_code_last_lines_and_log(
    wtflow: Run, wtfile: WtfileWriter, tmp_path: Path
) -> None:
    wtfile(FAILING)
    result = wtflow("run")
    assert result.code == 1
    head, tail, skipped, summary = result.err.splitlines()
    match = re.fullmatch(r"FAILED ci/test \(exit 4\); log: (\S+)", head)
    assert match, result
    assert (tmp_path / match[1]).read_text() == "AssertionError: 1 != 2\n"
    assert tail == "    AssertionError: 1 != 2"
    assert skipped == "skipped (upstream failed: ci/test): ci/after"
    assert summary.startswith("wtflow: ci failed in ")
    assert ": 1 failed, 1 skipped; output in " in summary
    assert "after ran" not in result.out


def test_ignore_failure_keeps_going_and_still_exits_1(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile(FAILING)
    result = wtflow("run", "-k")
    assert result.code == 1
    assert "[ci/after] after ran" in result.out


def test_without_a_name_every_workflow_runs_in_file_order_as_in_the_seed(
    wtflow: Run, wtfile: WtfileWriter
) -> None:
    wtfile(SEVERAL)
    result = wtflow("run")
    assert result.code == 1
    assert result.out.index("ran first") < result.out.index("ran second")
    assert "<== c failed" in result.out


def test_named_workflows_run_in_the_order_given(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile(SEVERAL)
    result = wtflow("run", "second", "first_one")  # underscores find the hyphenated name
    assert result.code == 0, result
    assert result.out.index("ran second") < result.out.index("ran first")


def test_workflow_names_may_come_after_options(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile(SEVERAL)
    result = wtflow("run", "second", "-q", "first_one")  # argparse alone left `first_one` over
    assert result.code == 0, result
    assert result.err.index("wtflow: second succeeded") < result.err.index("wtflow: first-one succeeded")
    assert wtflow("run", "second", "-q", "--bogus").err.endswith("unrecognized arguments: --bogus\n")


def test_seed_workflow_option_names_a_workflow(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile(SEVERAL)
    result = wtflow("run", "--workflow", "second")
    assert result.code == 0, result
    assert "ran second" in result.out
    assert "ran first" not in result.out


def test_unknown_workflow_is_exit_2_with_the_choices(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile(SEVERAL)
    result = wtflow("run", "deploy")
    assert (result.code, result.err) == (
        2,
        "wtflow: error: workflow 'deploy' not found in wtfile.py; available: first-one, second, broken\n",
    )


def test_a_failed_workflow_stops_the_ones_after_it_unless_keep_going(
    wtflow: Run, wtfile: WtfileWriter
) -> None:
    wtfile(SEVERAL)
    stopped = wtflow("run", "broken", "second")
    kept_going = wtflow("run", "broken", "second", "--keep-going")
    assert (stopped.code, "ran second" in stopped.out) == (1, False)
    assert (kept_going.code, "ran second" in kept_going.out) == (1, True)


def test_all_runs_every_workflow(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile(SEVERAL.replace("exit 1", "echo ran third"))
    result = wtflow("run", "--all")
    assert result.code == 0, result
    assert [line for line in result.out.splitlines() if line.startswith("[")] == [
        "[a] ran first",
        "[b] ran second",
        "[c] ran third",
    ]


def test_dry_run_prints_the_tree_and_runs_nothing(wtflow: Run, wtfile: WtfileWriter, tmp_path: Path) -> None:
    wtfile(
        '@wtflow.workflow\ndef ci():\n    return wtflow.Node(name="make", executable=wtflow.Command("touch made"))\n'
    )
    result = wtflow("run", "--dry-run")
    assert (result.code, result.out) == (
        0,
        "Workflow: ci\n- make  run: not resuming a run\n    $ touch made\n",
    )
    assert not (tmp_path / "made").exists()


def test_dry_run_json_explains_every_node_and_lists_its_artifacts(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile("""
    @wtflow.workflow
    def ci():
        return wtflow.Node(name="ci", children=[
            wtflow.Node(name="build", executable=wtflow.Command("uv build"),
                        artifacts=[wtflow.Artifact("wheel", file_path="dist/*.whl")]),
            wtflow.Node(name="docs", executable=wtflow.Command("mkdocs build")),
        ])
    """)
    result = wtflow("run", "--only", "build", "--dry-run", "--json")
    assert result.code == 0, result
    assert json.loads(result.out) == {"workflow": "ci", "nodes": [
        {"path": "ci/build", "action": "run", "reason": "not resuming a run",
         "artifacts": [{"name": "wheel", "kind": "file", "file_path": "dist/*.whl", "optional": False}]},
        {"path": "ci/docs", "action": "skip", "reason": "not selected", "artifacts": []},
    ]}  # fmt: skip


def test_only_runs_matching_nodes_and_the_nodes_on_the_way(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile("""
    @wtflow.workflow
    def ci():
        return wtflow.Node(name="ci", executable=wtflow.Command("echo setup"), children=[
            wtflow.Node(name="build", children=[
                wtflow.Node(name="app", executable=wtflow.Command("echo app")),
                wtflow.Node(name="docs", executable=wtflow.Command("echo docs")),
            ]),
            wtflow.Node(name="test", executable=wtflow.Command("echo test")),
        ])
    """)
    result = wtflow("run", "--only", "build/a*")
    assert result.code == 0, result
    ran = [line for line in result.out.splitlines() if line.startswith("[")]
    assert ran == ["[ci] setup", "[ci/build/app] app"]
    dry = wtflow("run", "--only", "build/a*", "--dry-run")
    assert [line.strip() for line in dry.out.splitlines() if line.lstrip().startswith("- ")] == [
        "- ci  run: on the way to the selected nodes",
        "- build",
        "- app  run: not resuming a run",
        "- docs  skip: not selected",
        "- test  skip: not selected",
    ]


def test_only_matching_nothing_is_a_usage_error(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile(CI)
    result = wtflow("run", "--only", "deploy/*")
    assert result.code == 2
    assert result.err == (
        "wtflow: error: --only 'deploy/*' matches no node; "
        "node paths look like: ci, ci/checks, ci/checks/lint, ci/checks/test, ci/build\n"
    )


def test_timeout_flag_is_a_default_limit_per_node(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile(
        '@wtflow.workflow\ndef ci():\n    return wtflow.Node(name="hang", executable=wtflow.Command("sleep 60"))\n'
    )
    result = wtflow("run", "--timeout", "0.5", "--kill-grace", "0.5")
    assert result.code == 1
    assert result.out.index("==> hang stopping (timed out)\n") < result.out.index("<== hang timed_out")
    assert result.err.startswith("TIMED_OUT hang (timed out); log: "), result


def test_jobs_caps_the_processes_running_at_once(wtflow: Run, wtfile: WtfileWriter, tmp_path: Path) -> None:
    # Each node checks in, looks for anyone else checked in, lingers, and checks out: with -j 1
    # nobody may ever see another (the linger only makes a broken cap likely to show).
    wtfile("""
    import os, pathlib, time
    def visit(name):
        room = pathlib.Path("room")
        (room / name).touch()
        others = sorted(p.name for p in room.iterdir() if p.name != name)
        time.sleep(0.2)
        (room / name).unlink()
        print("alone" if not others else f"saw {others}")

    @wtflow.workflow
    def fan():
        return wtflow.Node(name="fan", parallel=True, children=[
            wtflow.Node(name=f"n{i}", executable=wtflow.PyFunc(func=visit, args=(f"n{i}",))) for i in range(4)])
    """)
    (tmp_path / "room").mkdir()
    result = wtflow("run", "-j", "1")
    assert result.code == 0, result
    assert sorted(line for line in result.out.splitlines() if line.startswith("[")) == [
        f"[fan/n{i}] alone" for i in range(4)
    ]


def test_artifacts_dir_flag_moves_the_output(wtflow: Run, wtfile: WtfileWriter, tmp_path: Path) -> None:
    wtfile(CI)
    assert wtflow("run", "--artifacts-dir", "out").code == 0
    assert (tmp_path / "out" / "ci" / "latest" / "ci" / "build" / "stdout").read_text() == "built\n"


def test_quiet_shows_no_node_output_but_still_the_failures_and_summary(
    wtflow: Run, wtfile: WtfileWriter
) -> None:
    wtfile(FAILING)
    result = wtflow("run", "-q")
    assert (result.code, result.out) == (1, "")
    assert "    AssertionError: 1 != 2\n" in result.err
    assert "wtflow: ci failed in " in result.err


def test_verbose_also_reports_grouping_nodes(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile(CI)
    assert "<== ci/checks succeeded" not in wtflow("run").out
    assert "<== ci/checks succeeded" in wtflow("run", "-v").out


def test_console_raw_shows_the_nodes_bytes_only(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile(FAILING)
    result = wtflow("run", "--console", "raw")
    assert result.out == "collected 3\n"
    assert result.err.startswith("AssertionError: 1 != 2\nFAILED ci/test (exit 4)")


@pytest.mark.parametrize(
    ("args", "extra_env", "colored"),
    [
        ((), {}, False),  # a pipe: no colour
        (("--color", "always"), {}, True),
        (("--color", "always"), {"NO_COLOR": "1"}, True),  # the flag is the more explicit wish
        (("--color", "never"), {}, False),
        (("--color", "auto"), {"NO_COLOR": "1"}, False),
    ],
)
def test_color_flag_and_no_color(
    wtflow: Run,
    wtfile: WtfileWriter,
    tmp_path: Path,
    args: tuple[str, ...],
    extra_env: dict[str, str],
    colored: bool,
) -> None:
    wtfile(FAILING)
    result = wtflow("run", *args, env=cli_env(tmp_path, **extra_env))
    assert ("\x1b[" in result.err) is colored, result


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("-j", "many", "--jobs='many' is not a whole number >= 1; use e.g. 8"),
        ("--max-parallel", "0", "--max-parallel='0' is not a whole number >= 1; use e.g. 8"),
        ("--timeout", "soon", "--timeout='soon' is not a number of seconds >= 0; use e.g. 2.5"),
        ("--kill-grace", "-1", "--kill-grace='-1' is not a number of seconds >= 0; use e.g. 2.5"),
    ],
)
def test_bad_flag_value_is_one_line_and_exit_2(
    wtflow: Run, wtfile: WtfileWriter, flag: str, value: str, message: str
) -> None:
    wtfile(CI)
    result = wtflow("run", flag, value)
    assert (result.code, result.err) == (2, f"wtflow: error: {message}\n")


def test_unknown_flag_is_argparse_usage_and_exit_2(wtflow: Run) -> None:
    result = wtflow("run", "--frobnicate")
    assert result.code == 2
    assert result.err.endswith("wtflow: error: unrecognized arguments: --frobnicate\n")


def test_a_wtfile_given_as_a_name_gets_a_hint_about_f(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile(CI)
    result = wtflow("run", "other.py")
    assert result.code == 2
    assert result.err.endswith("available: ci; to load 'other.py' pass it with -f\n"), result
