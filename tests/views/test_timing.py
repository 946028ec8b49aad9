"""The critical path and the timeline's times, over the `show --json` shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from wtflow.views.timing import critical_path, seconds_text, subtree_intervals

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def node(path: str, *spans: tuple[float, float], parallel: bool | None = False) -> dict[str, Any]:
    attempts = [
        {"n": i + 1, "status": "succeeded", "started_at": (T0 + timedelta(seconds=a)).isoformat(),
         "ended_at": (T0 + timedelta(seconds=b)).isoformat()}
        for i, (a, b) in enumerate(spans)
    ]  # fmt: skip
    out: dict[str, Any] = {
        "path": path,
        "depth": path.count("/"),
        "status": "succeeded",
        "attempts": attempts,
    }
    if parallel is not None:
        out["parallel"] = parallel
    return out


def test_sequences_add_and_parallel_groups_take_the_longest() -> None:
    nodes = [
        node("ci"),
        node("ci/checks", parallel=True),
        node("ci/checks/lint", (0, 2)),
        node("ci/checks/tests", (0, 5), (6, 9)),  # retried: its span includes the delay
        node("ci/checks/docs", (0, 1)),
        node("ci/build", (9, 12)),
    ]
    path = critical_path(nodes, T0 + timedelta(seconds=12))
    assert path.paths == {"ci/checks/tests", "ci/build"}
    assert path.seconds == 12


def test_a_node_runs_its_own_executable_before_its_children() -> None:
    nodes = [node("root", (0, 1)), node("root/a", (1, 3)), node("root/b", (3, 4))]
    path = critical_path(nodes, T0)
    assert path.paths == {"root", "root/a", "root/b"}
    assert path.seconds == 4


def test_without_the_parallel_flag_overlapping_children_count_as_parallel() -> None:
    nodes = [node("r", parallel=None), node("r/a", (0, 4)), node("r/b", (1, 2))]
    assert critical_path(nodes, T0).paths == {"r/a"}
    nodes = [node("r", parallel=None), node("r/a", (0, 1)), node("r/b", (1, 2))]
    assert critical_path(nodes, T0).paths == {"r/a", "r/b"}


def test_a_running_attempt_counts_until_now() -> None:
    running = node("r/a", (0, 0))
    running["attempts"][0]["ended_at"] = None
    path = critical_path([node("r"), running], T0 + timedelta(seconds=7))
    assert path.paths == {"r/a"}
    assert path.seconds == 7


def test_a_deep_chain_needs_no_recursion() -> None:
    nodes = [node("/".join(["n"] * (i + 1)), (i, i + 1)) for i in range(3000)]
    assert critical_path(nodes, T0).seconds == 3000
    assert subtree_intervals(nodes, T0)[0] == (T0, T0 + timedelta(seconds=3000))


def test_durations_read_as_people_say_them() -> None:
    assert [seconds_text(s) for s in (0.25, 59.9, 184, 7500)] == ["0.2s", "59.9s", "3m04s", "2h05m"]
    assert seconds_text(3, running=True) == "3.0s+"
    assert seconds_text(None) == ""
