"""The wtfiles under examples/ run as the README shows them."""

from __future__ import annotations

import zipfile
from pathlib import Path

from tests.cli.conftest import EXAMPLES, Run


def test_ci_example_checks_in_parallel_then_builds(wtflow: Run, tmp_path: Path) -> None:
    result = wtflow("-f", str(EXAMPLES / "ci" / "wtfile.py"), "run")
    assert result.code == 0, result
    assert "[ci/checks/tests] 3 tests passed" in result.out
    assert result.out.index("<== ci/checks/lint succeeded") < result.out.index("==> ci/build started")
    assert zipfile.ZipFile(tmp_path / "dist" / "app.zip").namelist() == ["app.py"]


def test_ci_example_only_checks(wtflow: Run, tmp_path: Path) -> None:
    result = wtflow("-f", str(EXAMPLES / "ci" / "wtfile.py"), "run", "--only", "checks/*")
    assert result.code == 0, result
    assert not (tmp_path / "dist").exists()


def test_data_example_reads_earlier_outputs_from_artifacts(wtflow: Run) -> None:
    result = wtflow("-f", str(EXAMPLES / "data" / "wtfile.py"), "run", "--console", "raw")
    assert result.code == 0, result
    lines = result.out.splitlines()
    assert lines[-5:] == [
        '{"east": 200, "north": 165, "south": 115}',
        "  east:   200",
        " north:   165",
        " south:   115",
        "best region: east",
    ]


def test_retry_example_passes_on_the_third_attempt(wtflow: Run) -> None:
    result = wtflow("-f", str(EXAMPLES / "retry" / "wtfile.py"), "run", "flaky")
    assert result.code == 0, result
    assert "==> flaky/download started (attempt 3)" in result.out
    assert "[flaky/download] attempt 3: downloaded" in result.out
    assert "FAILED (allowed) flaky/notify (exit 1); log: " in result.err
    assert ": 2 succeeded, 1 failed (allowed); output in " in result.err
    assert "[flaky/publish] published" in result.out


def test_retry_example_that_keeps_failing_exits_1(wtflow: Run) -> None:
    result = wtflow("-f", str(EXAMPLES / "retry" / "wtfile.py"), "run", "broken")
    assert result.code == 1, result
    assert "FAILED broken/migrate (exit 3 after 2 attempts)" in result.err
    assert "    error: database is locked" in result.err
    assert "never runs" not in result.out


def test_examples_folder_lists_every_workflow(wtflow: Run) -> None:
    result = wtflow("-f", str(EXAMPLES), "list")
    assert result.out.splitlines() == [
        "Found 12 workflow(s):",
        "- ci (5 nodes)",
        "- sales-report (4 nodes)",
        "- deliver (7 nodes)  params: fail: int = 0",
        "- shards (3 nodes)  params: count: int = 4",
        "- deploy (2 nodes)  params: env: one of 'dev', 'prod' = 'dev', replicas: int = 1, dry_run: bool = False",
        "- results (5 nodes)",
        "- flaky (4 nodes)",
        "- broken (3 nodes)",
        "- suite (7 nodes)",
        "- fail-fast (3 nodes)",
        "- cleanup (5 nodes)",
        "- release (8 nodes)",
    ]


def test_results_example_hands_data_from_node_to_node(wtflow: Run) -> None:
    result = wtflow("-f", str(EXAMPLES / "results" / "wtfile.py"), "run", "--console", "raw")
    assert result.code == 0, result
    assert result.out.splitlines()[-1] == '{"ranking": ["east", "north", "south"]}'


def test_params_example_takes_its_parameters(wtflow: Run) -> None:
    result = wtflow("-f", str(EXAMPLES / "params" / "wtfile.py"), "run", "--console", "raw",
                    "-p", "env=prod", "-p", "replicas=2")  # fmt: skip
    assert result.code == 0, result
    assert result.out.splitlines()[:2] == ["deploying prod #1", "deploying prod #2"]


def test_tree_example_group_rules_hold_for_the_subtree(wtflow: Run) -> None:
    result = wtflow("-f", str(EXAMPLES / "tree" / "wtfile.py"), "run", "suite")
    assert result.code == 0, result
    assert "[suite/shards/shard-3] shard 3 on ci" in result.out
    assert "[suite/report] report for ci (full)" in result.out


def test_tree_example_fail_fast_stops_the_slow_check(wtflow: Run) -> None:
    result = wtflow("-f", str(EXAMPLES / "tree" / "wtfile.py"), "run", "fail-fast")
    assert result.code == 1, result
    assert "FAILED checks/lint (exit 1)" in result.err
    assert "<== checks/slow succeeded" not in result.out  # stopped, not run to its end


def test_tree_example_cleanup_runs_after_the_failure(wtflow: Run) -> None:
    result = wtflow("-f", str(EXAMPLES / "tree" / "wtfile.py"), "run", "cleanup")
    assert result.code == 1, result
    assert "[integration/stop-db] database down" in result.out
    assert "never runs" not in result.out


def test_tree_example_release_deploys_only_with_its_flag_canary_first(wtflow: Run) -> None:
    wtfile = str(EXAMPLES / "tree" / "wtfile.py")
    result = wtflow("-f", wtfile, "run", "release")
    assert result.code == 0, result
    assert "skipped (condition false): release/deploy" in result.err
    assert "deploy eu" not in result.out
    result = wtflow("-f", wtfile, "run", "release", "--flag", "deploy")
    assert result.code == 0, result
    deploys = [line for line in result.out.splitlines() if "] deploy " in line]
    assert deploys == ["[release/deploy/canary] deploy canary", "[release/deploy/eu] deploy eu"]


def test_tree_example_release_without_the_slow_tests_and_its_tags(wtflow: Run) -> None:
    wtfile = str(EXAMPLES / "tree" / "wtfile.py")
    result = wtflow("-f", wtfile, "run", "release", "--skip-tag", "slow")
    assert result.code == 0, result
    assert "12 passed" in result.out
    assert "3 passed" not in result.out
    listed = wtflow("-f", wtfile, "list", "--tags").out
    assert (
        "- release (8 nodes)\n    fast: release/build, release/tests/unit\n    slow: release/tests/e2e\n"
        in listed
    )


def test_grow_example_waits_across_branches(wtflow: Run) -> None:
    wtfile = str(EXAMPLES / "grow" / "wtfile.py")
    result = wtflow("-f", wtfile, "run", "deliver", "--console", "plain")
    assert result.code == 0, result
    assert "[deliver/ship/deploy] built app-1.0\n" in result.out
    assert result.out.index("<== deliver/make/docs succeeded") < result.out.index(
        "==> deliver/ship/notify started"
    )
    failed = wtflow("-f", wtfile, "run", "deliver", "-p", "fail=1", "--console", "plain")
    assert failed.code == 1, failed
    assert "<== deliver/ship/deploy skipped (upstream failed: deliver/make/build)\n" in failed.out
    assert "<== deliver/ship/notify skipped (upstream failed: deliver/make/build)\n" in failed.out


def test_grow_example_runs_the_shards_its_plan_returns(wtflow: Run) -> None:
    wtfile = str(EXAMPLES / "grow" / "wtfile.py")
    result = wtflow("-f", wtfile, "run", "shards", "-p", "count=3", "--console", "plain")
    assert result.code == 0, result
    assert "==> tests/plan added 3 nodes: shard-0, shard-1, shard-2\n" in result.out
    assert "[tests/plan/shard-2] shard 3 of 3: ok\n" in result.out
    assert result.out.index("<== tests/plan/shard-2 succeeded") < result.out.index(
        "==> tests/summary started"
    )
    assert (
        "  - plan  [parallel, may grow children]  run: not resuming a run\n"
        in wtflow("-f", wtfile, "run", "shards", "--dry-run").out
    )
