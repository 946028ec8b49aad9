"""Reading the record back: recent runs, one run's tree, a node's attempts and output files."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wtflow.db.tables import ArtifactRow, AttemptRow, NodeRow, Run
from wtflow.errors import LookupFailed


@dataclass
class RunView:
    run: Run
    counts: Counter[str] = field(default_factory=Counter)  # executing nodes by status


@dataclass
class AttemptView:
    row: AttemptRow
    outputs: dict[str, ArtifactRow] = field(default_factory=dict)  # stdout / stderr


@dataclass
class NodeView:
    row: NodeRow
    depth: int
    attempts: list[AttemptView] = field(default_factory=list)


def recent_runs(
    session: Session, *, workflow: str | None = None, status: str | None = None, limit: int = 20
) -> list[RunView]:
    """Newest first, each with its node counts by status."""
    query = select(Run).order_by(Run.started_at.desc(), Run.id).limit(limit)
    if workflow is not None:
        query = query.where(Run.workflow == workflow)
    if status is not None:
        query = query.where(Run.status == status)
    views = {run.id: RunView(run) for run in session.scalars(query)}
    if views:
        counts = (
            select(NodeRow.run_id, NodeRow.status, func.count())
            .where(NodeRow.run_id.in_(views), NodeRow.kind.is_not(None))
            .group_by(NodeRow.run_id, NodeRow.status)
        )
        for run_id, node_status, n in session.execute(counts).tuples():
            views[run_id].counts[node_status] = n
    return list(views.values())


def find_run(session: Session, ref: str) -> Run:
    """A run by full id, unique id prefix, or `last` (the newest)."""
    ref = ref.strip().lower()
    if ref in ("last", "latest"):
        run = session.scalars(select(Run).order_by(Run.started_at.desc()).limit(1)).first()
        if run is None:
            raise LookupFailed("no runs recorded yet; run a workflow first (wtflow run)")
        return run
    if not ref or any(c not in "0123456789abcdef-" for c in ref):
        raise LookupFailed(f"run {ref!r} is not a run id; give an id or prefix from `wtflow runs`, or `last`")
    ref = ref.replace("-", "")
    matches = list(session.scalars(select(Run).where(Run.id.startswith(ref)).limit(6)))
    if not matches:
        raise LookupFailed(f"no run with id {ref!r}; see `wtflow runs` for the recorded ones")
    if len(matches) > 1:
        ids = ", ".join(m.id[:12] for m in matches[:5])
        raise LookupFailed(f"run id prefix {ref!r} matches several runs ({ids}); give more characters")
    return matches[0]


def run_tree(session: Session, run_id: str) -> list[NodeView]:
    """The run's nodes in tree order (depth first), each with its attempts and their outputs."""
    rows = list(session.scalars(select(NodeRow).where(NodeRow.run_id == run_id)))
    views = {row.index: NodeView(row, 0) for row in rows}
    attempts: dict[tuple[int, int], AttemptView] = {}
    for attempt in session.scalars(
        select(AttemptRow).where(AttemptRow.run_id == run_id).order_by(AttemptRow.node_index, AttemptRow.n)
    ):
        attempts[(attempt.node_index, attempt.n)] = AttemptView(attempt)
        views[attempt.node_index].attempts.append(attempts[(attempt.node_index, attempt.n)])
    for artifact in session.scalars(select(ArtifactRow).where(ArtifactRow.run_id == run_id)):
        found = attempts.get((artifact.node_index, artifact.attempt))
        if found is not None:
            found.outputs[artifact.name] = artifact
    children: dict[int | None, list[NodeView]] = {}
    for node in sorted(views.values(), key=lambda v: v.row.position):
        children.setdefault(node.row.parent, []).append(node)
    ordered: list[NodeView] = []
    stack = [(v, 0) for v in reversed(children.get(None, []))]
    while stack:
        node, depth = stack.pop()
        node.depth = depth
        ordered.append(node)
        stack.extend((c, depth + 1) for c in reversed(children.get(node.row.index, [])))
    return ordered


def find_node(nodes: list[NodeView], ref: str) -> NodeView:
    """A node by tree path ('root/build/test'), path below the root, or name when that is unique."""
    ref = ref.strip().strip("/")
    for view in nodes:
        if view.row.path == ref or view.row.path.partition("/")[2] == ref:
            return view
    named = [v for v in nodes if v.row.name == ref]
    if len(named) == 1:
        return named[0]
    if named:
        paths = ", ".join(repr(v.row.path) for v in named[:5])
        raise LookupFailed(f"node name {ref!r} is ambiguous in this run ({paths}); give its path")
    known = ", ".join(repr(v.row.path) for v in nodes[:8])
    raise LookupFailed(f"no node {ref!r} in this run; nodes are: {known}{', ...' if len(nodes) > 8 else ''}")


def attempt_of(session: Session, run_id: str, node_index: int, n: int | None) -> AttemptView | None:
    """Attempt `n` of a node (the latest when None), with its outputs; read afresh for --follow."""
    query = select(AttemptRow).where(AttemptRow.run_id == run_id, AttemptRow.node_index == node_index)
    query = query.where(AttemptRow.n == n) if n is not None else query.order_by(AttemptRow.n.desc()).limit(1)
    row = session.scalars(query).first()
    if row is None:
        return None
    view = AttemptView(row)
    for artifact in session.scalars(
        select(ArtifactRow).where(
            ArtifactRow.run_id == run_id, ArtifactRow.node_index == node_index, ArtifactRow.attempt == row.n
        )
    ):
        view.outputs[artifact.name] = artifact
    return view


def node_status(session: Session, run_id: str, node_index: int) -> str:
    """A node's status as recorded now ('running' while a retry is still to come)."""
    status = session.scalar(
        select(NodeRow.status).where(NodeRow.run_id == run_id, NodeRow.index == node_index)
    )
    return status or "pending"
