"""Which nodes wait for which across branches, and the order that leaves (pure).

    waits(workflow, selected)   index -> the indices it waits for: its `after=` (`a >> b`) and the
                                nodes of other branches whose artifacts it reads; refuses a wait
                                on a node `--only` left out, and any cycle
    grown_waits(...)            the same for the nodes a PyFunc added at run time
    order(workflow, waits)      every index, each after everything it waits for (tree order
                                included): what digests are computed in

A node waits for the *whole subtree* of each node it names. With the tree's own order that
makes a graph of two points per node, S (its subtree may start) and E (its subtree ended):

    S(n) -> E(n)                    S(parent) -> S(child)      E(child) -> E(parent)
    E(child k) -> S(child k+1)      in a sequence (parallel=False)
    E(m) -> S(n)                    n waits for m

A cycle in it is a run that could never end; it is found before anything runs, in
O(nodes + edges), and named by the nodes on it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from wtflow.errors import WorkflowError
from wtflow.model import Placed, Workflow
from wtflow.reads import check_reads

Waits = Mapping[int, Sequence[int]]


def waits(workflow: Workflow, selected: Collection[int] | None = None) -> dict[int, tuple[int, ...]]:
    """What each node waits for besides the tree's own order, by index (only nodes that wait);
    a WorkflowError for a wait on a node not in this run, and for a cycle."""
    found = _collect(workflow, selected, workflow.placed)
    if found:  # the tree's own order alone never has a cycle
        order(workflow, found)
    return found


def grown_waits(
    workflow: Workflow, added: Sequence[Placed], selected: Collection[int] | None, before: Waits
) -> dict[int, tuple[int, ...]]:
    """`waits` for the nodes a run just grew (`before`: those of the rest of the tree)."""
    found = _collect(workflow, selected, added)
    if found:
        order(workflow, {**before, **found})
    return found


def _collect(
    workflow: Workflow, selected: Collection[int] | None, among: Sequence[Placed]
) -> dict[int, tuple[int, ...]]:
    implied = check_reads(workflow, selected, among)
    found: dict[int, tuple[int, ...]] = {}
    for p in among:
        if not p.node.after and p.index not in implied:
            continue  # most nodes: nothing to check
        named = []
        for other in p.node.after:
            index = workflow.index_of(other)
            if index is None:
                raise WorkflowError(
                    f"workflow {workflow.name!r}: node {p.path_str} waits for node {other.name!r} "
                    "(after=), which is not in this workflow; place it in the tree, or drop the wait"
                )
            named.append(index)
        both = list(dict.fromkeys([*named, *implied.get(p.index, ())]))
        if not both:
            continue
        if selected is not None and p.index in selected:
            for index in both:
                if index not in selected:
                    raise WorkflowError(
                        f"workflow {workflow.name!r}: node {p.path_str} waits for "
                        f"{workflow.placed[index].path_str}, which --only leaves out; select it too"
                    )
        found[p.index] = tuple(both)
    return found


def order(workflow: Workflow, waiting: Waits) -> list[int]:
    """Every node's index, each after all it waits for and all that runs before it in the tree;
    a WorkflowError naming the nodes on a cycle if there is none such."""
    placed = workflow.placed
    count = 2 * len(placed)
    edges: list[list[int]] = [[] for _ in range(count)]
    for p in placed:
        start, end = 2 * p.index, 2 * p.index + 1
        edges[start].append(end)
        children = workflow.children_of[p.index]
        for k, child in enumerate(children):
            edges[start].append(2 * child.index)
            edges[2 * child.index + 1].append(end)
            if not p.node.parallel and k + 1 < len(children):
                edges[2 * child.index + 1].append(2 * children[k + 1].index)
    for index, others in waiting.items():
        for other in others:
            edges[2 * other + 1].append(2 * index)
    incoming = [0] * count
    for targets in edges:
        for t in targets:
            incoming[t] += 1
    ready = [v for v in range(count) if incoming[v] == 0]
    done: list[int] = []
    while ready:
        v = ready.pop()
        done.append(v)
        for t in edges[v]:
            incoming[t] -= 1
            if incoming[t] == 0:
                ready.append(t)
    if len(done) < count:
        raise WorkflowError(_cycle_message(workflow, edges, incoming))
    return [v // 2 for v in done if v % 2 == 0]


def _cycle_message(workflow: Workflow, edges: list[list[int]], incoming: list[int]) -> str:
    # What Kahn's walk left has a cycle; follow each point to one that comes before it, among
    # those left, until a point comes round again.
    before: dict[int, int] = {}
    for v, targets in enumerate(edges):
        if incoming[v] > 0:
            for t in targets:
                if incoming[t] > 0:
                    before.setdefault(t, v)
    v = next(iter(before))
    seen: dict[int, int] = {}
    path: list[int] = []
    while v not in seen:
        seen[v] = len(path)
        path.append(v)
        v = before[v]
    loop = path[seen[v] :][::-1]  # in the order things happen
    names: list[str] = []
    for point in loop:
        name = workflow.placed[point // 2].path_str
        if not names or names[-1] != name:
            names.append(name)
    if len(names) > 1 and names[0] == names[-1]:
        names.pop()
    shown = " -> ".join([*names, names[0]])
    return (
        f"workflow {workflow.name!r}: its nodes wait for each other in a cycle: {shown} "
        "(each waits for the one before it: by after=, an artifact it reads, a sequence's order, "
        "or being inside a group); remove one of these waits"
    )
