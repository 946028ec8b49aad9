"""The plan's pure decisions: no process, no clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import config
from wtflow import Command, Node, Status, Workflow
from wtflow.config import Config
from wtflow.executors import ExecResult
from wtflow.plan import (
    Policy,
    attempt_status,
    policies,
    policy_for,
    retry_delay,
    selection,
    should_retry,
    slots,
    subtree,
    verdict,
)


def leaf(name: str) -> Node:
    return Node(name=name, executable=Command("true"))


def tree() -> Workflow:
    #  0 root ─ 1 a ─ 2 a1
    #         │     └ 3 a2
    #         └ 4 b ─ 5 b1
    root = Node(name="root", children=[Node(name="a", children=[leaf("a1"), leaf("a2")]),
                                       Node(name="b", children=[leaf("b1")])])  # fmt: skip
    return Workflow(name="w", root=root)


def test_no_predicate_selects_everything() -> None:
    assert selection(tree(), None) is None


def test_a_chosen_node_brings_its_subtree_and_its_ancestors() -> None:
    assert selection(tree(), lambda p: p.node.name == "a") == frozenset({0, 1, 2, 3})
    assert selection(tree(), lambda p: p.node.name == "b1") == frozenset({0, 4, 5})
    assert selection(tree(), lambda p: False) == frozenset()


def test_subtree_is_the_node_and_its_descendants() -> None:
    wf = tree()
    assert list(subtree(wf, 0)) == [0, 1, 2, 3, 4, 5]
    assert list(subtree(wf, 1)) == [1, 2, 3]
    assert list(subtree(wf, 3)) == [3]
    assert list(subtree(wf, 4)) == [4, 5]


def test_policy_is_the_nodes_settings_with_the_runs_time_limit(tmp_path: Path) -> None:
    node = Node(
        name="n", executable=Command("true", timeout=5), retries=2, retry_on=(3,), env={"A": "1"}, cwd="x"
    )
    p = Workflow(name="w", root=node).placed[0]
    assert policy_for(p, config(tmp_path, run__timeout=60)) == Policy(
        timeout=5, retries=2, retry_on=(3,), env={"A": "1"}, cwd=Path("x")
    )
    plain = Workflow(name="w", root=Node(name="n", executable=Command("true"))).placed[0]
    assert policy_for(plain, config(tmp_path, run__timeout=60)).timeout == 60
    assert policy_for(plain, config(tmp_path)).timeout is None


@pytest.mark.parametrize(
    ("status", "code", "attempt", "expected"),
    [
        (Status.FAILED, 1, 1, True),
        (Status.TIMED_OUT, None, 2, True),
        (Status.FAILED, 1, 3, False),  # retries used up
        (Status.SUCCEEDED, 0, 1, False),
        (Status.CANCELLED, None, 1, False),
    ],
)
def test_should_retry(status: Status, code: int | None, attempt: int, expected: bool) -> None:
    assert should_retry(Policy(retries=2), status, code, attempt) is expected


def test_retry_on_limits_which_exit_codes_retry() -> None:
    policy = Policy(retries=5, retry_on=(2, -9))
    assert should_retry(policy, Status.FAILED, 2, 1)
    assert should_retry(policy, Status.FAILED, -9, 1)
    assert not should_retry(policy, Status.FAILED, 1, 1)
    assert not should_retry(policy, Status.TIMED_OUT, None, 1)


def test_retry_delay_grows_by_the_backoff_times_the_jitter_drawn() -> None:
    policy = Policy(retry_delay=1.5, retry_backoff=2.0)
    no_jitter = lambda low, high: 1.0  # noqa: E731
    assert [retry_delay(policy, n, no_jitter) for n in (1, 2, 3)] == [1.5, 3.0, 6.0]
    drawn: list[tuple[float, float]] = []

    def highest(low: float, high: float) -> float:
        drawn.append((low, high))
        return high

    assert retry_delay(policy, 1, highest) == pytest.approx(1.8)
    assert drawn == [(0.8, 1.2)]


def test_slots_are_the_executors_capacity_unless_max_parallel_was_set_lower(tmp_path: Path) -> None:
    chosen = config(tmp_path, run__max_parallel=8)
    assert [slots(chosen, c) for c in (None, 3, 100, 0)] == [8, 3, 8, 1]
    default = Config.load(environ={})
    assert [slots(default, c) for c in (None, 3, 100, 0)] == [default.run.max_parallel, 3, 100, 1]


@pytest.mark.parametrize(
    ("result", "status"),
    [
        (ExecResult(exit_code=0), Status.SUCCEEDED),
        (ExecResult(exit_code=2), Status.FAILED),
        (ExecResult(signal=9), Status.FAILED),
        (ExecResult(signal=15, timed_out=True), Status.TIMED_OUT),
        (ExecResult(error="cannot start"), Status.FAILED),
        (ExecResult(error="worker lost", lost=True), Status.FAILED),
    ],
)
def test_attempt_status(result: ExecResult, status: Status) -> None:
    assert attempt_status(result) is status


@pytest.mark.parametrize(
    ("outcome", "signal", "expected"),
    [
        (Status.SUCCEEDED, None, (Status.SUCCEEDED, 0)),
        (Status.FAILED, None, (Status.FAILED, 1)),
        (Status.TIMED_OUT, None, (Status.FAILED, 1)),
        (Status.CANCELLED, None, (Status.CANCELLED, 1)),
        (Status.CANCELLED, 2, (Status.CANCELLED, 130)),
        (Status.CANCELLED, 15, (Status.CANCELLED, 143)),
    ],
)
def test_verdict(outcome: Status, signal: int | None, expected: tuple[Status, int]) -> None:
    assert verdict(outcome, signal) == expected


def test_a_groups_rules_hold_for_its_subtree_unless_a_node_sets_its_own(tmp_path: Path) -> None:
    deep = Node(name="deep", executable=Command("true"), retries=0, allow_failure=False, cwd="/abs")
    inner = Node(name="inner", env={"B": "2", "A": "inner"}, cwd="sub", max_parallel=2,
                 children=[leaf("plain"), deep])  # fmt: skip
    group = Node(name="g", retries=2, retry_delay=3, retry_backoff=1, retry_on=[75], allow_failure=True,
                 env={"A": "1"}, cwd="work", timeout=60, max_parallel=4, children=[inner])  # fmt: skip
    wf = Workflow(name="w", root=group)
    g, i, plain, d = policies(wf, config(tmp_path, run__timeout=5))
    assert g == Policy(retries=2, retry_delay=3, retry_backoff=1, retry_on=(75,), allow_failure=True,
                       env={"A": "1"}, cwd=Path("work"), limits=(0,), budget=60)  # fmt: skip
    assert plain == Policy(timeout=5, retries=2, retry_delay=3, retry_backoff=1, retry_on=(75,),
                           allow_failure=True, env={"A": "inner", "B": "2"}, cwd=Path("work/sub"),
                           limits=(0, 1))  # fmt: skip
    assert (d.retries, d.allow_failure, d.cwd, d.env) == (0, False, Path("/abs"), {"A": "inner", "B": "2"})
    assert (i.budget, i.timeout) == (None, None)


def tagged() -> Workflow:
    #  0 root ─ 1 unit {fast} ─ 2 u1
    #         │               └ 3 u2 {db}
    #         ├ 4 slow {slow} ─ 5 s1 {db}
    #         └ 6 docs
    root = Node(name="root", children=[
        Node(name="unit", tags={"fast"}, children=[leaf("u1"), Node(name="u2", tags={"db"})]),
        Node(name="slow", tags={"slow"}, children=[Node(name="s1", tags={"db"})]),
        leaf("docs"),
    ])  # fmt: skip
    return Workflow(name="w", root=root)


def test_a_node_has_its_own_tags_and_its_groups() -> None:
    from wtflow.plan import node_tags

    expected = [set(), {"fast"}, {"fast"}, {"fast", "db"}, {"slow"}, {"slow", "db"}, set()]
    assert node_tags(tagged()) == tuple(frozenset(tags) for tags in expected)


@pytest.mark.parametrize(
    ("tags", "skip_tags", "selected"),
    [
        ({"db"}, (), {0, 1, 3, 4, 5}),  # each tagged node, and the way to it
        ({"fast"}, (), {0, 1, 2, 3}),  # a tagged group brings its subtree
        ({"fast", "slow"}, (), {0, 1, 2, 3, 4, 5}),  # any of them
        ((), {"slow"}, {0, 1, 2, 3, 6}),  # the group and what inherits from it
        ((), {"db"}, {0, 1, 2, 4, 6}),  # a group stays when only a child is left out
        ({"db"}, {"slow"}, {0, 1, 3}),
    ],
)
def test_tags_select_as_only_does(tags: set[str], skip_tags: set[str], selected: set[int]) -> None:
    assert selection(tagged(), None, tags=tags, skip_tags=skip_tags) == frozenset(selected)


def test_only_and_a_tag_together_select_what_both_select() -> None:
    assert selection(tagged(), lambda p: p.path[-1] == "unit", tags={"db"}) == frozenset({0, 1, 3})
    assert selection(tagged(), lambda p: p.path[-1] == "docs", tags={"db"}) == frozenset({0})


def test_priority_holds_for_a_subtree_unless_a_node_sets_its_own() -> None:
    root = Node(name="root", priority=3, children=[leaf("a"), Node(name="b", priority=-1)])
    assert [p.priority for p in policies(Workflow(name="w", root=root), Config.load(environ={}))] == [
        3,
        3,
        -1,
    ]
    assert Policy().priority == 0
