"""The benchmark harness's smoke pass: it must keep running, whatever the figures say.

No wall-clock assertions (these machines are shared and noisy): only that every workload
produced a figure or said why it was skipped, and that the JSON is written. One repetition a
side is enough for that; the figures themselves come from full passes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wtflow import Node, Workflow

ROOT = Path(__file__).parent.parent


@pytest.mark.timeout(300)
def test_quick_pass_writes_a_figure_for_every_workload(tmp_path: Path) -> None:
    # Unmeasured even under `coverage run`: tracing every process the harness starts would
    # take minutes, and what it measures is wtflow's speed, not the harness's code.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--reps", "1", "--out", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (result,) = tmp_path.glob("*-quick.json")
    doc = json.loads(result.read_text())
    figures = doc["figures"]
    measured = [f for f in figures if not f["skipped"]]
    assert all(f["ratio"] is not None and f["ratio"] > 0 for f in measured), figures
    # What creating an attempt's folder and files cost before and after: the disk's state.
    assert set(doc["disk"]) == {"creation_ms_before", "creation_ms_after"}
    assert all(ms > 0 for ms in doc["disk"].values()), doc["disk"]


def _flat_waits(wf: Workflow) -> list[list[int]]:
    """What each command of a workflow waits for, as `benchmarks.shell._make` is told, by the
    command's place among the leaves: the last commands of what runs before it in its sequence
    (a group's first child: what its group waits for), and its `>>` waits."""
    from wtflow.dependencies import waits

    place = {id(p.node): k for k, p in enumerate(x for x in wf.placed if x.node.executable is not None)}
    index = {p.index: id(p.node) for p in wf.placed}
    before: dict[int, set[int]] = {}

    def last(node: Node) -> set[int]:
        if not node.children:
            return {place[id(node)]}
        if node.parallel:
            return set().union(*(last(c) for c in node.children))
        return last(node.children[-1])

    def walk(node: Node, after: set[int]) -> None:
        if not node.children:
            before[place[id(node)]] = set(after)
        for k, child in enumerate(node.children):
            walk(child, after if node.parallel or k == 0 else last(node.children[k - 1]))

    walk(wf.root, set())
    for i, waited in waits(wf).items():
        before[place[index[i]]] |= {place[index[j]] for j in waited}
    return [sorted(before[k]) for k in range(len(before))]


def test_the_makefiles_wait_as_the_workflows_do() -> None:
    from benchmarks.shell import _big_tree, _big_tree_order, _crossed, _crossed_order

    assert [sorted(x) for x in _crossed_order(4, 3)] == _flat_waits(_crossed(4, 3, True))
    assert [sorted(x) for x in _big_tree_order(3, 2, 4)] == _flat_waits(_big_tree(3, 2, 4)[0])
