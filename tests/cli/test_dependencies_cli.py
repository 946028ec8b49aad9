"""Dependencies and dynamic children end to end: `wtflow run` on a wtfile, real processes, the
record in a real SQLite file, then `show`, `show --json` and `logs <path>` on what it kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.cli.conftest import Run, WtfileWriter, cli_env

DEPS = """
@wtflow.workflow
def ci():
    build = wtflow.Node(name="build", executable=wtflow.Command("echo built > out.txt; exit ${FAIL:-0}"))
    deploy = wtflow.Node(name="deploy", executable=wtflow.Command("cat out.txt"), after=[build])
    report = wtflow.Node(name="report", executable=wtflow.Command(["cat", build.stdout_artifact]))
    return wtflow.Node(name="ci", parallel=True, children=[
        wtflow.Node(name="ship", children=[deploy, report]),
        wtflow.Node(name="make", children=[build]),
    ])
"""

GROWING = """
import functools


def shard(n: int) -> None:
    print(f"shard {n} of", sys.argv[0] and "a forked child")


def plan(count: int) -> list[wtflow.Node]:
    print(f"planning {count} shards")
    shards = [wtflow.Node(name=f"shard-{n}", executable=wtflow.PyFunc(func=shard, args=(n,))) for n in range(count)]
    # A closure, which plain pickle could not carry back: it returns a node of its own.
    more = wtflow.PyFunc(func=lambda: wtflow.Node(name="late", executable=wtflow.Command("echo late")))
    return [wtflow.Node(name="shards", parallel=True, children=shards), wtflow.Node(name="more", executable=more)]


@wtflow.workflow
def fan():
    return wtflow.Node(name="fan", children=[
        wtflow.Node(name="plan", executable=wtflow.PyFunc(func=plan, args=(3,))),
        wtflow.Node(name="after", executable=wtflow.Command("echo after")),
    ])
"""


def _recorded(tmp_path: Path, **extra: str) -> dict[str, str]:
    return cli_env(tmp_path, WTFLOW_DB_URL=f"sqlite:///{tmp_path / 'runs.db'}", **extra)


def _shown_nodes(wtflow: Run, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The last run's nodes by path, as `wtflow show --json` has them."""
    return {n["path"]: n for n in json.loads(wtflow("show", "--json", env=env).out)["nodes"]}


def test_a_wait_across_branches_runs_in_order_and_is_shown(
    wtflow: Run, wtfile: WtfileWriter, tmp_path: Path
) -> None:
    wtfile(DEPS)
    env = _recorded(tmp_path)
    result = wtflow("run", "--console", "plain", env=env)
    assert result.code == 0, result
    # deploy's branch came first and was free to start: it waited, and found the file made.
    assert "[ci/ship/deploy] built\n" in result.out
    assert result.out.index("<== ci/make/build succeeded") < result.out.index("==> ci/ship/deploy started")
    shown = wtflow("show", env=env)
    assert "after ci/make/build" in shown.out, shown
    nodes = _shown_nodes(wtflow, env)
    assert nodes["ci/ship/deploy"]["depends_on"] == ["ci/make/build"]
    assert nodes["ci/ship/report"]["depends_on"] == ["ci/make/build"]  # it reads build's stdout
    assert nodes["ci/make/build"]["depends_on"] == []


def test_a_failed_dependency_skips_the_waiting_node_with_the_reason(
    wtflow: Run, wtfile: WtfileWriter, tmp_path: Path
) -> None:
    wtfile(DEPS)
    env = _recorded(tmp_path, FAIL="3")
    result = wtflow("run", "--console", "plain", env=env)
    assert result.code == 1, result
    assert "<== ci/ship/deploy skipped (upstream failed: ci/make/build)\n" in result.out
    nodes = _shown_nodes(wtflow, env)
    assert (nodes["ci/ship/deploy"]["status"], nodes["ci/ship/deploy"]["reason"]) == (
        "skipped",
        "upstream failed: ci/make/build",
    )
    assert nodes["ci/ship/report"]["reason"] == "upstream failed: ci/make/build"


def test_a_cycle_is_a_usage_error_before_anything_runs(
    wtflow: Run, wtfile: WtfileWriter, tmp_path: Path
) -> None:
    wtfile("""
    @wtflow.workflow
    def ci():
        a = wtflow.Node(name="a", executable=wtflow.Command("touch ran"))
        b = wtflow.Node(name="b", executable=wtflow.Command("touch ran"))
        a >> b >> a
        return wtflow.Node(name="ci", parallel=True, children=[a, b])
    """)
    result = wtflow("run")
    assert result.code == 2, result
    assert result.err.startswith(
        "wtflow: error: workflow 'ci': its nodes wait for each other in a cycle: ci/"
    )
    assert result.err.count("\n") == 1
    assert not (tmp_path / "ran").exists()


def test_a_pyfunc_grows_children_that_run_are_recorded_and_found_by_path(
    wtflow: Run, wtfile: WtfileWriter, tmp_path: Path
) -> None:
    wtfile(GROWING)
    env = _recorded(tmp_path)
    result = wtflow("run", "--console", "plain", env=env)
    assert result.code == 0, result
    assert "==> fan/plan added 5 nodes: shards, more\n" in result.out
    assert "[fan/plan/shards/shard-2] shard 2 of a forked child\n" in result.out
    assert "[fan/plan/more/late] late\n" in result.out
    assert result.out.index("<== fan/plan/more/late succeeded") < result.out.index("==> fan/after started")
    nodes = _shown_nodes(wtflow, env)
    assert list(nodes) == [
        "fan", "fan/plan", "fan/plan/shards", "fan/plan/shards/shard-0", "fan/plan/shards/shard-1",
        "fan/plan/shards/shard-2", "fan/plan/more", "fan/plan/more/late", "fan/after",
    ]  # fmt: skip
    assert nodes["fan/plan/shards"]["parent"] == "fan/plan"
    assert nodes["fan/plan/more/late"]["parent"] == "fan/plan/more"
    assert [p for p, n in nodes.items() if n["dynamic"]] == [
        "fan/plan/shards", "fan/plan/shards/shard-0", "fan/plan/shards/shard-1", "fan/plan/shards/shard-2",
        "fan/plan/more", "fan/plan/more/late",
    ]  # fmt: skip
    assert all(n["status"] == "succeeded" for n in nodes.values())
    assert "added at run time" in wtflow("show", env=env).out
    logs = wtflow("logs", "last", "fan/plan/shards/shard-1", env=env)
    assert logs.out == "shard 1 of a forked child\n", logs


def test_dry_run_marks_the_nodes_that_may_grow_children(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile(GROWING)
    result = wtflow("run", "--dry-run")
    assert result.code == 0, result
    assert "  - plan  [may grow children]  run: not resuming a run\n" in result.out
    assert "  - after  run: not resuming a run\n" in result.out
