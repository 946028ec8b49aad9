"""Tags and flags from the command line: `run --tag/--skip-tag/--flag`, `list --tags`, and the
tags in the record (`show`, `show --json`) on both databases; `Engine(tags=...)` from Python."""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path

import pytest
import sqlalchemy as sa

import wtflow
from tests.cli.conftest import Run, WtfileWriter, cli_env
from tests.helpers import config
from wtflow.db import tables

TAGGED = """
@wtflow.workflow
def ci():
    return wtflow.Node(name="ci", children=[
        wtflow.Node(name="build", executable=wtflow.Command("echo built")),
        wtflow.Node(name="tests", parallel=True, tags={"test"}, children=[
            wtflow.Node(name="unit", executable=wtflow.Command("echo unit ran"), tags={"fast"}),
            wtflow.Node(name="db", executable=wtflow.Command("echo db ran"), tags={"slow", "db"}),
        ]),
        wtflow.Node(name="deploy", executable=wtflow.Command("echo deployed"),
                    when=lambda run: "deploy" in run.flags),
    ])
"""


def ran(out: str) -> list[str]:
    return [line.split("] ", 1)[1] for line in out.splitlines() if line.startswith("[")]


def test_tag_runs_the_tagged_nodes_and_the_way_to_them(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile(TAGGED)
    result = wtflow("run", "--tag", "db")
    assert result.code == 0, result
    assert ran(result.out) == ["db ran"]  # the way to it is its ancestors, as with --only
    assert "skipped (not selected): ci/build, ci/tests/unit, ci/deploy" in result.err
    result = wtflow("run", "--tag", "fast", "--tag", "db")  # any of them
    assert sorted(ran(result.out)) == ["db ran", "unit ran"]


def test_skip_tag_leaves_out_the_tagged_nodes_and_their_subtrees(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile(TAGGED)
    assert ran(wtflow("run", "--skip-tag", "slow").out) == ["built", "unit ran"]
    assert ran(wtflow("run", "--skip-tag", "test").out) == ["built"]
    assert ran(wtflow("run", "--tag", "test", "--skip-tag", "db").out) == ["unit ran"]
    assert ran(wtflow("run", "--only", "tests/*", "--tag", "slow").out) == ["db ran"]


def test_dry_run_says_what_the_tags_leave_out(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile(TAGGED)
    result = wtflow("run", "--dry-run", "--skip-tag", "test")
    assert result.out == (
        "Workflow: ci\n- ci\n  - build  run: not resuming a run\n      $ echo built\n"
        "  - tests  [parallel, tags=test]  skip: not selected\n    - unit  [tags=fast]  skip: not selected\n"
        "    - db  [tags=db,slow]  skip: not selected\n"
        "  - deploy  run: not resuming a run, if its condition holds\n"
        "      when: wtfile.ci.<locals>.<lambda>\n      $ echo deployed\n"
    )


def test_flags_turn_on_what_conditions_ask_for(wtflow: Run, wtfile: WtfileWriter, tmp_path: Path) -> None:
    wtfile(TAGGED)
    result = wtflow("run", "--skip-tag", "test")
    assert ran(result.out) == ["built"]
    assert "skipped (condition false): ci/deploy" in result.err
    assert ran(wtflow("run", "--skip-tag", "test", "--flag", "deploy").out) == ["built", "deployed"]
    from_env = wtflow("run", "--skip-tag", "test", env=cli_env(tmp_path, WTFLOW_FLAGS="canary,deploy"))
    assert ran(from_env.out) == ["built", "deployed"]
    shown = wtflow("config", env=cli_env(tmp_path, WTFLOW_FLAGS="deploy, canary")).out
    assert [line.split() for line in shown.splitlines() if line.startswith("run.flags")] == [
        ["run.flags", "canary,", "deploy", "WTFLOW_FLAGS"]
    ]


def test_bad_tags_and_flags_are_one_line_and_exit_2(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile(TAGGED)
    for args, message in [
        (("--tag", "sloww"), "wtflow: error: --tag 'sloww' matches no node; tags in use: db, fast, slow, test "
                             "(wtflow list --tags)\n"),
        (("--skip-tag", "a b"), "wtflow: error: --skip-tag 'a b' is not a tag; use a plain word such as 'slow' "
                                "or 'db' (letters, digits and _ . : + -)\n"),
        (("--flag", "de ploy"), "wtflow: error: --flag='de ploy' is not a list of flag names ('de ploy' is not a word); "
                                "use comma-separated words, e.g. deploy, slow\n"),
    ]:  # fmt: skip
        result = wtflow("run", *args)
        assert (result.code, result.err) == (2, message), result


def test_a_bad_tag_in_the_wtfile_is_one_line_and_exit_2(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile('@wtflow.workflow\ndef ci():\n    return wtflow.Node(name="ci", tags="slow")\n')
    result = wtflow("run")
    assert result.code == 2, result
    assert "node 'ci': tags='slow' is not a set of tags; use e.g. tags={'slow', 'db'}" in result.err


def test_list_tags_names_each_tag_and_the_nodes_that_set_it(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile(TAGGED)
    assert wtflow("list", "--tags").out == (
        "Found 1 workflow(s):\n- ci (6 nodes)\n"
        "    db: ci/tests/db\n    fast: ci/tests/unit\n    slow: ci/tests/db\n    test: ci/tests\n"
    )
    [row] = json.loads(wtflow("list", "--tags", "--json").out)
    assert row["tags"] == {"db": ["ci/tests/db"], "fast": ["ci/tests/unit"], "slow": ["ci/tests/db"],
                           "test": ["ci/tests"]}  # fmt: skip
    assert "tags" not in json.loads(wtflow("list", "--json").out)[0]


def test_each_nodes_tags_are_recorded_and_shown(
    wtflow: Run, wtfile: WtfileWriter, tmp_path: Path, db_url: str
) -> None:
    wtfile(TAGGED)
    env = cli_env(tmp_path, WTFLOW_DB_URL=db_url, NO_COLOR="1")
    assert wtflow("run", "--tag", "test", env=env).code == 0
    record = sa.create_engine(db_url)
    try:
        with record.connect() as conn:
            rows = dict(conn.execute(sa.select(tables.nodes.c.path, tables.nodes.c.tags)).all())
    finally:
        record.dispose()  # no connection left for the garbage collector to close
    assert rows == {"ci": None, "ci/build": None, "ci/tests": ["test"], "ci/tests/unit": ["fast", "test"],
                    "ci/tests/db": ["db", "slow", "test"], "ci/deploy": None}  # fmt: skip
    shape = json.loads(wtflow("show", "--json", env=env).out)
    assert {n["path"]: n["tags"] for n in shape["nodes"]}["ci/tests/db"] == ["db", "slow", "test"]
    assert shape["provenance"]["selection"]["tags"] == ["test"]
    lines = {
        line.split()[0]: line for line in wtflow("show", env=env).out.splitlines() if line.startswith("  ")
    }
    assert lines["tests"].endswith("tags test")
    assert lines["db"].endswith("tags db, slow")  # what it adds to its group's
    assert lines["deploy"].endswith("not selected")


def test_a_tag_of_one_workflow_leaves_out_the_whole_of_another(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile(
        TAGGED
        + '\n@wtflow.workflow\ndef docs():\n    return wtflow.Node(name="docs", executable=wtflow.Command("echo docs"))\n'
    )
    result = wtflow("run", "ci", "docs", "--tag", "db")
    assert result.code == 0, result
    assert ran(result.out) == ["db ran"]
    assert "skipped (not selected): docs" in result.err


def test_engine_tags_are_checked_as_the_command_line_s(tmp_path: Path) -> None:
    """From Python too a tag no node has is an error, not a run that leaves out every node."""
    tree = wtflow.Node(
        name="r", children=[wtflow.Node(name="a", executable=wtflow.Command("true"), tags={"db"})]
    )
    wf = wtflow.Workflow(name="t", root=tree)
    cases: list[tuple[Collection[str], Collection[str], str]] = [
        ({"nope"}, (), "tags= 'nope' matches no node; tags in use: db"),
        ((), ["slow"], "skip_tags= 'slow' matches no node; tags in use: db"),
        ({"a b"}, (), "tags= 'a b' is not a tag; use a plain word"),
        ("db", (), "Engine tags='db' is not a set of tags; use e.g. tags={'db'}"),
    ]
    for tags, skip_tags, message in cases:
        with pytest.raises(wtflow.UsageError) as caught:
            wtflow.Engine(wf, tags=tags, skip_tags=skip_tags)
        assert str(caught.value).startswith(message)
    assert wtflow.Engine(wf, config(tmp_path), tags={"db"}).run() == 0
    assert tree.children[0].status is wtflow.Status.SUCCEEDED
