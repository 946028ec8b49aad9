"""Which artifacts a node reads (its PyFunc's arguments, its Command's argv, its env), and whether each exists by the time it runs (pure)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import Any

from wtflow.errors import WorkflowError
from wtflow.executables import Command, PyFunc
from wtflow.model import Artifact, Placed, Workflow

_MAX_DEPTH = 4  # how deep into lists and dicts an artifact handle is looked for


def check_reads(
    workflow: Workflow, selected: Collection[int] | None = None, among: Sequence[Placed] | None = None
) -> dict[int, list[int]]:
    """Refuse a run in which a node (a `PyFunc`'s arguments, a `Command`'s argv, its `env`) reads an artifact that cannot be complete when it starts; return the waits such reads imply.

    An artifact is complete once its node has ended: an ancestor (its executable runs before
    its children), or a node in an earlier sibling's subtree of a sequential group. A node of
    another branch (under a parallel group) is waited for: the read implies `after=` on it, and
    its index is returned under the reader's. A later node's, one of its own subtree's or an
    unselected node's is refused: the reader would get empty or partial data and the run would
    succeed anyway. `among`: only these readers (the nodes a run grew)."""
    implied: dict[int, list[int]] = {}
    for reader in workflow.placed if among is None else among:
        if selected is not None and reader.index not in selected:
            continue
        for artifact in _artifacts(_inputs(reader), _MAX_DEPTH):
            index = None if artifact.owner is None else workflow.index_of(artifact.owner)
            if index is None:
                continue  # a node of another workflow: its artifact is what that run left
            written = workflow.placed[index]
            why = _why_not_ready(workflow, reader, written, selected)
            if why is _WAIT:
                implied.setdefault(reader.index, []).append(written.index)
            elif why:
                fix = "select it too" if why is _UNSELECTED else "move the reader after it in a sequence"
                raise WorkflowError(
                    f"workflow {workflow.name!r}: node {reader.path_str} reads the {artifact.name} of "
                    f"{written.path_str}, which {why}; {fix}"
                )
    return implied


_WAIT = "runs in another branch: wait for it"
_UNSELECTED = "--only leaves out"


def _inputs(reader: Placed) -> list[Any]:
    executable, env = reader.node.executable, reader.node.env or {}
    values: list[Any] = list(env.values())
    if isinstance(executable, PyFunc):
        values += [*executable.args, *executable.kwargs.values()]
    elif isinstance(executable, Command) and not isinstance(executable.cmd, str):
        values += list(executable.cmd)
    return values


def _why_not_ready(
    workflow: Workflow, reader: Placed, written: Placed, selected: Collection[int] | None
) -> str | None:
    if selected is not None and written.index not in selected:
        return _UNSELECTED
    if written.index == reader.index:
        return "is its own output, still being written while it runs"
    reader_chain = _chain(workflow, reader)
    written_chain = _chain(workflow, written)
    if written.index in {p.index for p in reader_chain}:
        return None  # an ancestor: its executable ended before its children started
    if reader.index in {p.index for p in written_chain}:
        return "is in its own subtree and runs after it"
    depth = 0
    while reader_chain[depth + 1].index == written_chain[depth + 1].index:
        depth += 1
    common = reader_chain[depth]
    if common.node.parallel:
        return _WAIT
    if written_chain[depth + 1].position > reader_chain[depth + 1].position:
        return "runs later"
    return None


def _chain(workflow: Workflow, p: Placed) -> list[Placed]:
    """The root, ..., p."""
    chain = [p]
    parent = p.parent
    while parent is not None:
        chain.append(workflow.placed[parent])
        parent = chain[-1].parent
    return chain[::-1]


def _artifacts(values: Any, depth: int) -> Iterator[Artifact]:
    for value in values:
        if isinstance(value, Artifact):
            yield value
        elif depth > 0 and isinstance(value, list | tuple | set | frozenset):
            yield from _artifacts(value, depth - 1)
        elif depth > 0 and isinstance(value, dict):
            yield from _artifacts(value.values(), depth - 1)
