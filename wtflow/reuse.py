"""A node whose result in the run being resumed stands (decisions.REUSE): nothing runs.

Its files (stdout, stderr, its `result.json`, its declared files) are linked into this run's
folder where its own attempt would have written them, so later nodes read them as if it had
just run, and it is recorded as one attempt with no process, naming the run it came from: its
result and declared files with their SHA-256, its streams in the order they first came.
"""

from __future__ import annotations

from wtflow.artifacts import reuse_outputs
from wtflow.context import RunContext, now
from wtflow.decisions import REUSE, Decision, PreviousOutput
from wtflow.events import KeptFile, NodeFinished, NodeStarted
from wtflow.kept import Kept, bind, digest
from wtflow.model import RESULT_FILE, STREAMS, Placed
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
    earlier = decision.reused
    output = ctx.store.attempt_output(ctx.run_dir, p.path, 1)
    declared = {a.name for a in p.node.artifacts}
    outputs = {  # a glob's files in name order, as keep() made them; what it no longer declares stays behind
        name: o
        for name, o in sorted(earlier.outputs.items())
        if o.kind != "file" or name.partition("/")[0] in declared
    }
    files = reuse_outputs({_place(name, o): o.path for name, o in outputs.items()}, output.folder)
    streams = {name: files[name] for name in STREAMS if name in files}
    for name, path in streams.items():
        p.node.artifact(name).bind(path)
    kept: list[KeptFile] = []
    for name, o in outputs.items():
        if o.kind != "stream":
            path = files[_place(name, o)]
            kept.append(
                KeptFile(name.partition("/")[0], path, path.stat().st_size, o.sha256 or digest(path), o.kind)
            )
    bind(p.node, Kept(tuple(kept)))
    at = now()
    sizes = {name: path.stat().st_size for name, path in streams.items()}
    ctx.state.update(p.index, status=Status.SUCCEEDED, exit_code=0, attempts=1, started_at=at, ended_at=at)
    ctx.fanout.emit(
        NodeStarted(ctx.run_id, p.index, p.path, 1, at, streams.get("stdout"), streams.get("stderr"), None,
                    None, ctx.plan.digests.get(p.index), ctx.plan.previous.run_id)
    )  # fmt: skip
    # As the streams first came, so `logs --both` and the CI logs interleave them as they were.
    order = earlier.output_order
    if order is None or sum(n for _, n in order) != sum(sizes.values()):  # not kept, or not these files
        order = tuple((name, size) for name, size in sizes.items() if size)
    ctx.fanout.emit(
        NodeFinished(ctx.run_id, p.index, p.path, 1, Status.SUCCEEDED, 0, at, at, False,
                     sizes.get("stdout", 0), sizes.get("stderr", 0), order, tuple(kept))
    )  # fmt: skip
    return Status.SUCCEEDED


def _place(name: str, output: PreviousOutput) -> str:
    """Where in the node's folder a recorded file goes: where its own attempt would write it."""
    return RESULT_FILE if output.kind == "result" else name
