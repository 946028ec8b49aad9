"""Reading the record back: recent runs, one run's tree, a node's attempts and output files.

Rows are SQLAlchemy Core rows: columns read as attributes (`run.status`, `node.path`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Row, func, select

from wtflow.db.tables import artifacts, attempts, nodes, runs
from wtflow.errors import LookupFailed

# A Row is a tuple, whose .index() method hides a column named "index": read it under this name.
_NODE_COLUMNS = [c for c in nodes.c if c.name != "index"] + [nodes.c.index.label("node_index")]


@dataclass
class RunView:
    run: Row[Any]
    counts: Counter[str] = field(default_factory=Counter)  # executing nodes by status


@dataclass
class AttemptView:
    row: Row[Any]
    outputs: dict[str, Row[Any]] = field(default_factory=dict)  # stdout / stderr


@dataclass
class NodeView:
    row: Row[Any]
    depth: int
    attempts: list[AttemptView] = field(default_factory=list)


def recent_runs(
    conn: Connection, *, workflow: str | None = None, status: str | None = None, limit: int = 20
) -> list[RunView]:
    """Newest first, each with its node counts by status."""
    query = select(runs).order_by(runs.c.started_at.desc(), runs.c.id).limit(limit)
    if workflow is not None:
        query = query.where(runs.c.workflow == workflow)
    if status is not None:
        query = query.where(runs.c.status == status)
    views = {run.id: RunView(run) for run in conn.execute(query)}
    if views:
        counts = (
            select(nodes.c.run_id, nodes.c.status, func.count())
            .where(nodes.c.run_id.in_(views), nodes.c.kind.is_not(None))
            .group_by(nodes.c.run_id, nodes.c.status)
        )
        for run_id, node_status, n in conn.execute(counts):
            views[run_id].counts[node_status] = n
    return list(views.values())


def find_run(conn: Connection, ref: str) -> Row[Any]:
    """A run by full id, unique id prefix, or `last` (the newest)."""
    ref = ref.strip().lower()
    if ref in ("last", "latest"):
        run = conn.execute(select(runs).order_by(runs.c.started_at.desc()).limit(1)).first()
        if run is None:
            raise LookupFailed("no runs recorded yet; run a workflow first (wtflow run)")
        return run
    if not ref or any(c not in "0123456789abcdef-" for c in ref):
        raise LookupFailed(f"run {ref!r} is not a run id; give an id or prefix from `wtflow runs`, or `last`")
    ref = ref.replace("-", "")
    matches = list(conn.execute(select(runs).where(runs.c.id.startswith(ref)).limit(6)))
    if not matches:
        raise LookupFailed(f"no run with id {ref!r}; see `wtflow runs` for the recorded ones")
    if len(matches) > 1:
        ids = ", ".join(m.id[:12] for m in matches[:5])
        raise LookupFailed(f"run id prefix {ref!r} matches several runs ({ids}); give more characters")
    return matches[0]


def run_tree(conn: Connection, run_id: str) -> list[NodeView]:
    """The run's nodes in tree order (depth first), each with its attempts and their outputs."""
    views = {
        row.node_index: NodeView(row, 0)
        for row in conn.execute(select(*_NODE_COLUMNS).where(nodes.c.run_id == run_id))
    }
    by_attempt: dict[tuple[int, int], AttemptView] = {}
    for attempt in conn.execute(
        select(attempts).where(attempts.c.run_id == run_id).order_by(attempts.c.node_index, attempts.c.n)
    ):
        by_attempt[(attempt.node_index, attempt.n)] = AttemptView(attempt)
        views[attempt.node_index].attempts.append(by_attempt[(attempt.node_index, attempt.n)])
    for artifact in conn.execute(select(artifacts).where(artifacts.c.run_id == run_id)):
        found = by_attempt.get((artifact.node_index, artifact.attempt))
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
        stack.extend((c, depth + 1) for c in reversed(children.get(node.row.node_index, [])))
    return ordered


def find_node(tree: list[NodeView], ref: str) -> NodeView:
    """A node by tree path ('root/build/test'), path below the root, or name when that is unique."""
    ref = ref.strip().strip("/")
    for view in tree:
        if view.row.path == ref or view.row.path.partition("/")[2] == ref:
            return view
    named = [v for v in tree if v.row.name == ref]
    if len(named) == 1:
        return named[0]
    if named:
        paths = ", ".join(repr(v.row.path) for v in named[:5])
        raise LookupFailed(f"node name {ref!r} is ambiguous in this run ({paths}); give its path")
    known = ", ".join(repr(v.row.path) for v in tree[:8])
    raise LookupFailed(f"no node {ref!r} in this run; nodes are: {known}{', ...' if len(tree) > 8 else ''}")


def attempt_of(conn: Connection, run_id: str, node_index: int, n: int | None) -> AttemptView | None:
    """Attempt `n` of a node (the latest when None), with its outputs; read afresh for --follow."""
    query = select(attempts).where(attempts.c.run_id == run_id, attempts.c.node_index == node_index)
    query = query.where(attempts.c.n == n) if n is not None else query.order_by(attempts.c.n.desc()).limit(1)
    row = conn.execute(query).first()
    if row is None:
        return None
    view = AttemptView(row)
    for artifact in conn.execute(
        select(artifacts).where(
            artifacts.c.run_id == run_id, artifacts.c.node_index == node_index, artifacts.c.attempt == row.n
        )
    ):
        view.outputs[artifact.name] = artifact
    return view


def node_status(conn: Connection, run_id: str, node_index: int) -> str:
    """A node's status as recorded now ('running' while a retry is still to come)."""
    status = conn.execute(
        select(nodes.c.status).where(nodes.c.run_id == run_id, nodes.c.index == node_index)
    ).scalar()
    return status or "pending"
