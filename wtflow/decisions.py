"""What each node of a run will do and why: run, reuse an earlier run's result, or skip (pure,
but for asking whether the files to reuse are still there).

`decide` weighs each node against the run being resumed (a `PreviousRun`, read from the record
by the caller): a node that succeeded there with the same digest (digests.py) and nothing
upstream of it running again is reused; anything else runs, with the reason. Without a run to
resume every selected node runs; what `--only` leaves out, or a condition turns off, is skipped
with its subtree. `--dry-run` prints these decisions (`render`, `as_json`); the record keeps one
per node of a resumed run.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from wtflow.digests import Digest
from wtflow.executables import Command, PyFunc
from wtflow.model import RESULT_FILE, Placed, Workflow
from wtflow.plan import subtree
from wtflow.reads import _artifacts, _inputs

RUN, REUSE, SKIP = "run", "reuse", "skip"
_PART_REASONS = {
    "env": "environment changed",
    "cwd": "cwd changed",
    "reads": "the artifacts it reads changed",
}
_MAX_DEPTH = 4  # as deep into a PyFunc's arguments as reads.py looks
_LAST_TIME = {"failed": "failed", "timed_out": "timed out", "cancelled": "was cancelled", "crashed": "crashed",
              "skipped": "was skipped", "pending": "did not run", "running": "did not finish"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class PreviousOutput:
    """A file the last attempt of a node being resumed left, as the record names it."""

    path: Path
    kind: str = "stream"  # stream, result, file
    sha256: str | None = None  # of a result or a declared file


@dataclass(frozen=True, slots=True)
class PreviousNode:
    """A node of the run being resumed, as its record says."""

    status: str
    digest: str | None
    ended_at: datetime | None
    # Its last attempt's files by record name: stdout, stderr, result, "<declared name>/<file name>".
    outputs: Mapping[str, PreviousOutput] = field(default_factory=dict)
    # How its two streams alternated, as they came (stream, bytes); None when not kept.
    output_order: tuple[tuple[str, int], ...] | None = None


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


def upstream_nodes(workflow: Workflow, index: int, where: Mapping[int, int] | None = None) -> list[int]:
    """What the node follows as a prerequisite, so that its running again runs this one again:
    the nodes whose artifacts it reads, then its ancestors, nearest first. Order alone is not
    one (an earlier sibling in a sequence, with nothing read from it; see digests.py).

    `where` (each node's index by `id(node)`) saves building it again for every node."""
    if where is None:
        where = _where(workflow)
    p = workflow.placed[index]
    found = [where[id(a.owner)] for a in _artifacts(_inputs(p), _MAX_DEPTH) if id(a.owner) in where]
    while p.parent is not None:
        found.append(p.parent)
        p = workflow.placed[p.parent]
    return list(dict.fromkeys(found))


def _where(workflow: Workflow) -> dict[int, int]:
    return {id(p.node): p.index for p in workflow.placed}


def condition(p: Placed) -> bool | None:
    """What the node's `when=` says before anything runs: True or False, or None when a
    callable decides once its turn comes.

    The hook for `when=` (issue 12): until `Node` has it, every condition holds. A node that
    turns out False at its turn is skipped by the engine, with the reason `condition false`."""
    when = getattr(p.node, "when", None)
    if when is None or isinstance(when, bool):
        return when is not False
    return None


def decide(
    workflow: Workflow,
    digests: Mapping[int, Digest],
    selected: Collection[int] | None,
    previous: PreviousRun | None,
) -> dict[int, Decision]:
    """The decision for every node with an executable, and for every node that is skipped with
    its subtree (`not selected`, `condition false`), by preorder index."""
    decisions: dict[int, Decision] = {}
    where = _where(workflow)
    for p in workflow.placed:
        above = decisions.get(p.parent) if p.parent is not None else None
        holds = condition(p)
        if selected is not None and p.index not in selected:
            decisions[p.index] = Decision(SKIP, "not selected")
        elif above is not None and above.action == SKIP:
            decisions[p.index] = above  # a skipped group's subtree goes with it, for its reason
        elif holds is False:
            decisions[p.index] = Decision(SKIP, "condition false")
        elif p.node.executable is not None:
            decision = _decide(workflow, p, digests, selected, previous, decisions, where)
            if holds is None:
                decision = Decision(
                    decision.action, f"{decision.reason}, if its condition holds", decision.reused
                )
            decisions[p.index] = decision
    return decisions


def _decide(
    workflow: Workflow,
    p: Placed,
    digests: Mapping[int, Digest],
    selected: Collection[int] | None,
    previous: PreviousRun | None,
    decided: Mapping[int, Decision],
    where: Mapping[int, int],
) -> Decision:
    if previous is None:
        if selected is not None and not all(i in selected for i in subtree(workflow, p.index)):
            return Decision(RUN, "on the way to the selected nodes")  # --only picked some below it
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
    for index in upstream_nodes(workflow, p.index, where):
        decision = decided.get(index)
        if decision is not None and decision.action == RUN:
            return Decision(RUN, f"upstream node {workflow.placed[index].path_str} re-ran")
    if changed:
        return Decision(RUN, "what runs before it changed")
    missing = [name for name, output in before.outputs.items() if not output.path.is_file()]
    if missing:
        return Decision(RUN, f"its {missing[0]} from {previous.short} is gone")
    kept = {name.partition("/")[0] for name, output in before.outputs.items() if output.kind == "file"}
    new = [a.name for a in p.node.artifacts if not a.optional and a.name not in kept]
    if new:  # declared since (the declarations are not in the digest: they do not change what runs)
        return Decision(RUN, f"its artifact {new[0]} was not kept in {previous.short}")
    at = f" at {before.ended_at.astimezone().strftime('%H:%M')}" if before.ended_at else ""
    return Decision(REUSE, f"succeeded in {previous.short}{at}, inputs unchanged", before)


def render(workflow: Workflow, decisions: Mapping[int, Decision]) -> str:
    """Each node, what it would do and why, what it runs and what it leaves, as `--dry-run`
    prints it."""
    return workflow.render(explained={i: str(d) for i, d in decisions.items()})


def as_json(workflow: Workflow, decisions: Mapping[str, Decision]) -> dict[str, Any]:
    """`--dry-run --json`: each decided node's action and reason, and the artifacts it leaves;
    `decisions` by path, as `Engine.decisions()` gives them."""
    nodes = [
        {"path": p.path_str, "action": d.action, "reason": d.reason, "artifacts": leaves(p)}
        for p in workflow.placed
        if (d := decisions.get(p.path_str)) is not None
    ]
    return {"workflow": workflow.name, "nodes": nodes}


def leaves(p: Placed) -> list[dict[str, Any]]:
    """The artifacts a node leaves besides its streams: its result (a PyFunc's value, when it
    returns one) and the files it declares."""
    found: list[dict[str, Any]] = []
    if isinstance(p.node.executable, PyFunc):
        found.append({"name": "result", "kind": "result", "file": RESULT_FILE})
    for a in p.node.artifacts:
        found.append({"name": a.name, "kind": "file", "file_path": str(a.file_path), "optional": a.optional})
    return found
