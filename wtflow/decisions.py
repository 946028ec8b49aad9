"""What each node of a run will do and why: run, reuse an earlier run's result, or skip (pure,
but for asking whether the files to reuse are still there).

`decide` weighs each node against the run being resumed (a `PreviousRun`, read from the record
by the caller): a node that succeeded there with the same digest (digests.py) and nothing
upstream of it running again is reused; anything else runs, with the reason. `--dry-run`
prints these decisions; the record keeps one per node.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from wtflow.dependencies import Waits, order
from wtflow.digests import Digest
from wtflow.executables import Command, PyFunc
from wtflow.model import Placed, Workflow
from wtflow.plan import subtree

RUN, REUSE, SKIP = "run", "reuse", "skip"
_PART_REASONS = {
    "env": "environment changed",
    "cwd": "cwd changed",
    "reads": "the artifacts it reads changed",
}
_LAST_TIME = {"failed": "failed", "timed_out": "timed out", "cancelled": "was cancelled", "crashed": "crashed",
              "skipped": "was skipped", "pending": "did not run", "running": "did not finish"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class PreviousNode:
    """A node of the run being resumed, as its record says."""

    status: str
    digest: str | None
    ended_at: datetime | None
    outputs: Mapping[str, Path] = field(default_factory=dict)  # its last attempt's: stdout, stderr


@dataclass(frozen=True, slots=True)
class PreviousRun:
    run_id: str
    nodes: Mapping[str, PreviousNode]  # by path, names joined by "/"

    @property
    def short(self) -> str:
        return self.run_id[:8]


@dataclass(frozen=True, slots=True)
class Decision:
    action: str  # run, reuse, skip
    reason: str
    reused: PreviousNode | None = None

    def __str__(self) -> str:
        return f"{self.action}: {self.reason}"


def upstream_nodes(workflow: Workflow, index: int, waits: Waits | None = None) -> list[int]:
    """Every node that ends before this one starts: its ancestors, at each level the earlier
    siblings (with their subtrees) in a sequence, and what it or an ancestor waits for (`waits`,
    dependencies.waits; with their subtrees). Nearest first."""
    found: list[int] = []
    p = workflow.placed[index]
    for other in (waits or {}).get(p.index, ()):
        found.extend(reversed(subtree(workflow, other)))
    while p.parent is not None:
        parent = workflow.placed[p.parent]
        if not parent.node.parallel:
            for sibling in reversed(workflow.children_of[parent.index][: p.position]):
                found.extend(reversed(subtree(workflow, sibling.index)))
        found.append(parent.index)
        for other in (waits or {}).get(parent.index, ()):
            found.extend(reversed(subtree(workflow, other)))
        p = parent
    return found


def decide(
    workflow: Workflow,
    digests: Mapping[int, Digest],
    selected: Collection[int] | None,
    previous: PreviousRun | None,
    waits: Waits | None = None,
) -> dict[int, Decision]:
    """The decision for every node with an executable, by preorder index; `waits`
    (dependencies.waits): what each waits for counts as upstream of it."""
    decisions: dict[int, Decision] = {}
    # What a node waits for may come later in preorder: decided first.
    nodes = [workflow.placed[i] for i in order(workflow, waits)] if waits else workflow.placed
    grew = _grew(workflow, previous)
    for p in nodes:
        if selected is not None and p.index not in selected:
            decisions[p.index] = Decision(SKIP, "not selected")
        elif isinstance(p.node.executable, PyFunc) and p.path_str in grew:
            # Reused, it would not run, and the children it returned would be missing from this run.
            decisions[p.index] = Decision(RUN, f"it grew children in {grew[p.path_str]}, which come with it")
        elif p.node.executable is not None:
            decisions[p.index] = _decide(workflow, p, digests, previous, decisions, waits)
    return dict(sorted(decisions.items()))


def _grew(workflow: Workflow, previous: PreviousRun | None) -> dict[str, str]:
    """The paths of the nodes that had children in the run being resumed that this tree has not:
    dynamic children (or children removed since; running their parent again is safe)."""
    if previous is None:
        return {}
    here = {p.path_str for p in workflow.placed}
    return {path.rpartition("/")[0]: previous.short for path in previous.nodes if path not in here}


def _decide(
    workflow: Workflow,
    p: Placed,
    digests: Mapping[int, Digest],
    previous: PreviousRun | None,
    decided: Mapping[int, Decision],
    waits: Waits | None,
) -> Decision:
    if previous is None:
        return Decision(RUN, "not resuming a run")
    before = previous.nodes.get(p.path_str)
    if before is None:
        return Decision(RUN, f"not in run {previous.short}")
    if before.status != "succeeded":
        return Decision(RUN, f"{_LAST_TIME.get(before.status, before.status)} last time")
    recorded = Digest.parse(before.digest)
    if recorded is None:
        return Decision(RUN, f"no digest recorded in {previous.short}")
    changed = digests[p.index].changed(recorded)
    if "executes" in changed:
        what = "command" if isinstance(p.node.executable, Command) else "function or its arguments"
        return Decision(RUN, f"{what} changed")
    for part in ("env", "cwd", "reads"):
        if part in changed:
            return Decision(RUN, _PART_REASONS[part])
    for index in upstream_nodes(workflow, p.index, waits):
        decision = decided.get(index)
        if decision is not None and decision.action == RUN:
            return Decision(RUN, f"upstream node {workflow.placed[index].path_str} re-ran")
    if changed:
        return Decision(RUN, "what runs before it changed")
    missing = [name for name, path in before.outputs.items() if not path.is_file()]
    if missing:
        return Decision(RUN, f"its {missing[0]} from {previous.short} is gone")
    at = f" at {before.ended_at.astimezone().strftime('%H:%M')}" if before.ended_at else ""
    return Decision(REUSE, f"succeeded in {previous.short}{at}, inputs unchanged", before)


def render(workflow: Workflow, decisions: Mapping[int, Decision]) -> str:
    """Each node and what it would do, as `--dry-run` prints it."""
    lines = [f"Workflow: {workflow.name}"]
    for p in workflow.placed:
        indent = "  " * (len(p.path) - 1)
        decision = decisions.get(p.index)
        lines.append(f"{indent}- {p.path[-1]}" + (f"  {decision}" if decision else ""))
    return "\n".join(lines) + "\n"
