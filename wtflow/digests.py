"""A digest per node: what it executes, with what, after what (pure; as Nextflow's task hash).

A node's digest has five parts, each a short SHA-256, so a changed digest also says *what*
changed (the reason `--resume` and `--dry-run` print):

    executes   a Command's shell string or argv; a PyFunc's qualified name, the hash of its
               source (inspect.getsource, when there is one) and its arguments (an artifact
               among them by whose output it is: its producer's digest is in `reads`)
    env        the environment changes it runs with, its ancestors' merged in (a Secret's
               value only hashed: digests never hold it)
    cwd        the working folder it runs in (a relative one resolved against its ancestors')
    reads      the digests of the artifacts it reads (their producers' digests and names), in a
               PyFunc's arguments, a Command's argv or an env value
    upstream   the digests of what it follows as a prerequisite: its parent's own (executes,
               reads and upstream; its environment reaches the child through `env`), which holds
               the ancestors' in turn, and the subtrees of the nodes it waits for (`after=`)

Order alone is not a dependency. An earlier sibling in a sequence runs first but is not in the
digest, so a changed command or env value re-runs its node and the nodes that read its output
(or see the value), and nothing else: Nextflow re-runs a task only when its inputs changed, doit
re-runs a task for its `file_dep`s (a `task_dep` only orders), make for its prerequisites (an
order-only one never triggers). A node that needs another's work reads its artifact, or sits
below it, or waits for it by `after=`: a wait is asked for by name, so it counts as a
prerequisite (a wait only implied by a read counts through `reads` already).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from wtflow.config import Config
from wtflow.dependencies import order
from wtflow.executables import Command, Executable, PyFunc
from wtflow.model import Artifact, Node, Placed, Secret, Workflow
from wtflow.plan import Policy, policies, subtree
from wtflow.reads import _artifacts, _inputs

_SIZE = 12  # hex digits a part: 48 bits, plenty to tell one node's versions apart
_MAX_DEPTH = 4


def _h(*pieces: str) -> str:
    joined = "\0".join(pieces)
    # Most nodes have no env, no cwd and read nothing: three of a node's six hashes, all of "".
    return hashlib.sha256(joined.encode("utf-8", "surrogateescape")).hexdigest()[:_SIZE] if joined else _EMPTY


_EMPTY = hashlib.sha256(b"").hexdigest()[:_SIZE]


@dataclass(frozen=True, slots=True)
class Digest:
    executes: str
    env: str
    cwd: str
    reads: str
    upstream: str

    def __str__(self) -> str:
        """The stored form: the parts joined by '-'."""
        return f"{self.executes}-{self.env}-{self.cwd}-{self.reads}-{self.upstream}"

    @classmethod
    def parse(cls, text: str | None) -> Digest | None:
        """A stored digest read back; None for none or one this wtflow does not know."""
        parts = (text or "").split("-")
        return cls(*parts) if len(parts) == len(fields(cls)) else None

    def changed(self, other: Digest) -> tuple[str, ...]:
        """The names of the parts that differ, in order."""
        return tuple(f.name for f in fields(self) if getattr(self, f.name) != getattr(other, f.name))

    @property
    def own(self) -> str:
        """What a child takes from it: all but the environment and cwd, which it does not see."""
        return _h(self.executes, self.reads, self.upstream)


def _canonical(value: Any, depth: int = _MAX_DEPTH) -> str:
    if isinstance(value, Artifact):
        return f"artifact({value.node_name!r}, {value.name!r})"
    if isinstance(value, Secret):
        return f"secret({_h(str(value))})"
    if isinstance(value, str | int | float | bool | None | Path):
        return repr(value)
    if depth > 0 and isinstance(value, list | tuple):
        return "[" + ", ".join(_canonical(v, depth - 1) for v in value) + "]"
    if depth > 0 and isinstance(value, dict):
        items = sorted((_canonical(k, 0), _canonical(v, depth - 1)) for k, v in value.items())
        return "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"
    # Anything else by its repr: one with an address in it differs every run, so its node runs again.
    return repr(value)


# inspect.getsource reads and tokenizes the function's file: 300 PyFuncs of one function took
# 60 ms of a run's start reading it 300 times.
@functools.lru_cache(maxsize=1024)
def _source(func: Callable[..., Any]) -> str:
    try:
        return inspect.getsource(func)
    except (OSError, TypeError):  # a builtin, or defined where no file holds it
        code = getattr(func, "__code__", None)
        return "" if code is None else code.co_code.hex()


def _word(value: object) -> str:
    """An argv word or env value as the digest sees it: an artifact by whose output it is (its
    path is only known when the node starts, and its bytes count through `reads`)."""
    if isinstance(value, Artifact):
        return f"<{value.name} of {value.node_name}>"
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


def executes_digest(executable: Executable | None) -> str:
    if executable is None:
        return _h("group")
    if isinstance(executable, Command):
        cmd = executable.cmd
        return _h("sh", cmd) if isinstance(cmd, str) else _h("argv", *map(_word, cmd))
    assert isinstance(executable, PyFunc)
    args = _canonical(list(executable.args))
    kwargs = _canonical(dict(executable.kwargs))
    return _h("pyfunc", executable.describe(), _h(_source(executable.func)), args, kwargs)


def env_digest(env: Mapping[str, str | Artifact] | None) -> str:
    return _h(
        *(f"{k}={_h(v) if isinstance(v, Secret) else _word(v)}" for k, v in sorted((env or {}).items()))
    )


def node_digest(
    node: Node,
    *,
    reads: Sequence[str],
    upstream: Sequence[str],
    env: Mapping[str, str | Artifact] | None = None,
    cwd: Path | None = None,
) -> Digest:
    """The node's digest, given the digests of the artifacts it reads and of its upstream nodes;
    `env` and `cwd` are what it runs with (its own when not given)."""
    return Digest(
        executes=executes_digest(node.executable),
        env=env_digest(node.env if env is None else env),
        cwd=_h(str((node.cwd if cwd is None else cwd) or "")),
        reads=_h(*reads),
        upstream=_h(*upstream),
    )


def workflow_digests(
    workflow: Workflow,
    waits: Mapping[int, Sequence[int]] | None = None,
    resolved: Sequence[Policy] | None = None,
) -> dict[int, Digest]:
    """Every node's digest, by index; what a node waits for (`waits`: dependencies.waits) is
    upstream of it too. `resolved` is the run's policies, when it has them already."""
    found: dict[int, Digest] = {}
    where = {id(p.node): p.index for p in workflow.placed}
    # Only env and cwd are taken from the policies, and neither depends on the settings.
    if resolved is None:
        resolved = policies(workflow, Config())
    nodes: Iterable[Placed] = workflow.placed
    if waits:  # a node may wait for one later in preorder (or read its artifact): that one first
        nodes = [workflow.placed[i] for i in order(workflow, waits)]
    for p in nodes:
        upstream = [] if p.parent is None else [found[p.parent].own]
        upstream += [_subtree(workflow, other, found) for other in waits.get(p.index, ())] if waits else []
        reads: list[str] = []
        for artifact in _artifacts(_inputs(p), _MAX_DEPTH):
            owner = where.get(id(artifact.owner))
            producer = str(found[owner]) if owner is not None and owner in found else artifact.node_name
            reads.append(_h(producer, artifact.name))
        policy = resolved[p.index]
        found[p.index] = node_digest(p.node, reads=reads, upstream=upstream, env=policy.env, cwd=policy.cwd)
    return found


def _subtree(workflow: Workflow, index: int, found: Mapping[int, Digest]) -> str:
    return _h(*(str(found[i]) for i in subtree(workflow, index)))
