"""A run grows: the nodes a PyFunc returned join the tree as its last children.

They get the indices after every node so far (the run's records and the record's rows are
keyed by index), their parent's policies, their own waits (checked for cycles against the whole
tree), and a `NodesAdded` event, before the PyFunc's own NodeFinished; the walk then runs them
after its static children like any other child. Past `run.max_nodes`, or when they cannot be
placed, the PyFunc's attempt fails, saying why on its stderr.
"""

from __future__ import annotations

from pathlib import Path

from wtflow import dynamic, plan
from wtflow.context import RunContext, waited_paths
from wtflow.dependencies import grown_waits
from wtflow.errors import WtflowError
from wtflow.events import NodesAdded, node_spec
from wtflow.model import Node, Placed
from wtflow.slots import Slots


def grow(ctx: RunContext, p: Placed, folder: Path) -> str | None:
    """Add the nodes the attempt of `p` returned, if any; what is wrong with them, else None."""
    workflow = ctx.workflow
    try:
        nodes = dynamic.load(folder, workflow)
    except WtflowError as e:
        return str(e)
    if not nodes:
        return None
    count, limit = _count(nodes), ctx.config.run.max_nodes
    if len(workflow.placed) + count > limit:
        return (
            f"node {p.path_str} returned {count} nodes, which would make the run {len(workflow.placed) + count} "
            f"nodes, more than run.max_nodes={limit}; return fewer, or raise [run] max_nodes (WTFLOW_MAX_NODES)"
        )
    before = len(workflow.placed)
    try:
        added = workflow.grow(p.index, nodes)
        selected = ctx.selected if ctx.selected is None else ctx.selected | {q.index for q in added}
        waits = grown_waits(workflow, added, selected, ctx.waits)
    except WtflowError as e:
        workflow.trim(before)
        return f"the nodes it returned cannot join the tree: {e}"
    ctx.selected = selected
    ctx.waits.update(waits)
    ctx.state.grown()
    policies = list(ctx.policies)
    for q in added:  # preorder: a parent's policy is resolved before its children's
        policies.append(plan.policy_for(q, ctx.config, policies[q.parent] if q.parent is not None else None))
        if q.node.max_parallel is not None:
            ctx.group_slots[q.index] = Slots(q.node.max_parallel)
    ctx.policies = tuple(policies)
    tags = plan.node_tags(workflow)  # a grown node has its new ancestors' tags too
    specs = tuple(
        node_spec(q, None, ctx.policies[q.index].allow_failure, tags[q.index],
                  depends_on=waited_paths(workflow, ctx.waits, q), dynamic=True)
        for q in added
    )  # fmt: skip
    ctx.fanout.emit(NodesAdded(ctx.run_id, p.index, specs))
    return None


def _count(nodes: list[Node]) -> int:
    seen: set[int] = set()  # a node among its own children is refused when placed, not looped over
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen.add(id(node))
            stack.extend(node.children)
    return len(seen)
