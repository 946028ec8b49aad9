"""A node whose result in the run being resumed stands (decisions.REUSE): nothing runs.

Its files are linked into this run's folder, so later nodes read them as if it had just run,
and it is recorded as one attempt with no process, naming the run it came from.
"""

from __future__ import annotations

from wtflow.artifacts import reuse_outputs
from wtflow.context import RunContext, now
from wtflow.decisions import REUSE, Decision
from wtflow.events import NodeFinished, NodeStarted
from wtflow.model import Placed
from wtflow.status import Status


def reuse(ctx: RunContext, p: Placed) -> Status | None:
    """The node's earlier result, if the plan reuses it; None: it runs."""
    decision = ctx.plan.decisions.get(p.index)
    if decision is None or decision.action != REUSE:
        return None
    try:
        return _reuse(ctx, p, decision)
    except OSError as e:  # the earlier files went away or cannot be linked: run it instead
        ctx.fanout.problems.append(f"node {p.path_str}: its earlier output cannot be reused ({e}); it ran")
        return None


def _reuse(ctx: RunContext, p: Placed, decision: Decision) -> Status:
    assert decision.reused is not None
    assert ctx.plan.previous is not None
    output = ctx.store.attempt_output(ctx.run_dir, p.path, 1)
    files = reuse_outputs(dict(decision.reused.outputs), output.folder)
    for name, path in files.items():
        p.node.artifact(name).bind(path)
    at = now()
    sizes = {name: path.stat().st_size for name, path in files.items()}
    ctx.state.update(p.index, status=Status.SUCCEEDED, exit_code=0, attempts=1, started_at=at, ended_at=at)
    ctx.fanout.emit(
        NodeStarted(ctx.run_id, p.index, p.path, 1, at, files.get("stdout"), files.get("stderr"), None,
                    None, ctx.plan.digests.get(p.index), ctx.plan.previous.run_id)
    )  # fmt: skip
    order = tuple((name, size) for name, size in sizes.items() if size) or ()
    ctx.fanout.emit(
        NodeFinished(ctx.run_id, p.index, p.path, 1, Status.SUCCEEDED, 0, at, at, False,
                     sizes.get("stdout", 0), sizes.get("stderr", 0), order)
    )  # fmt: skip
    return Status.SUCCEEDED
