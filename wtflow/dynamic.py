"""Dynamic children: the nodes a PyFunc returns travel from the process that ran it to the tree.

    <attempt folder>/nodes.pickle     written by the PyFunc's process (save), read by the engine
                                      once the attempt succeeded (load), then removed

cloudpickle, so that returned PyFuncs may be closures and lambdas as the tree's own may. A node
or artifact of the tree itself among them (`after=[build]`, `build.stdout_artifact`) is pickled
as a reference (its workflow's token and index), and resolved to the very object again: the
engine's bindings of its files and its place in the tree are what they mean.
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cloudpickle

from wtflow.errors import WtflowError
from wtflow.model import NODES_FILE, Artifact, Node, Workflow


def returned_nodes(value: object) -> list[Node] | None:
    """The nodes a PyFunc returned (a Node, or a non-empty list or tuple of them), else None."""
    if isinstance(value, Node):
        return [value]
    if isinstance(value, list | tuple) and value and all(isinstance(v, Node) for v in value):
        return list(value)
    return None


class _Pickler(cloudpickle.CloudPickler):  # type: ignore[misc]
    def persistent_id(self, obj: object) -> tuple[str, ...] | None:
        if isinstance(obj, Node) and obj.placement is not None:
            return ("node", *map(str, obj.placement))
        if isinstance(obj, Artifact) and obj.owner is not None and obj.owner.placement is not None:
            return ("artifact", *map(str, obj.owner.placement), obj.name)
        return None


def save(nodes: Sequence[Node], folder: Path) -> None:
    """Pickle the returned nodes into the attempt's folder (in the PyFunc's process)."""
    data = io.BytesIO()
    _Pickler(data).dump(list(nodes))
    # Owner-only, like every other file of the run.
    fd = os.open(folder / NODES_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "wb") as f:
        f.write(data.getvalue())


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, workflow: Workflow) -> None:
        super().__init__(io.BytesIO(data))
        self._workflow = workflow

    def persistent_load(self, pid: Any) -> object:
        kind, token, index, *rest = pid
        placed = self._workflow.placed
        if token != self._workflow.token or not 0 <= int(index) < len(placed):
            raise WtflowError(
                f"the nodes it returned refer to a node of another workflow than {self._workflow.name!r}; "
                "refer only to nodes of this tree, or return new ones"
            )
        node = placed[int(index)].node
        return node if kind == "node" else node.artifact(rest[0])


def load(folder: Path, workflow: Workflow) -> list[Node] | None:
    """The nodes the attempt's PyFunc returned, or None if it returned none; the file is removed
    (the nodes are in the tree and the record from now on)."""
    path = folder / NODES_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    path.unlink()
    try:
        nodes = _Unpickler(data, workflow).load()
    except WtflowError:
        raise
    except Exception as e:  # a class its process had and this one cannot import, say
        raise WtflowError(f"the nodes it returned cannot be read back ({type(e).__name__}: {e})") from None
    return returned_nodes(nodes)
