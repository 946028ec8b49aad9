# mypy: disable-error-code="redundant-expr"
# (the checks below guard against callers who ignore the annotations)
"""The tree: `Workflow`, `Node` and the `Artifact` handles on a node's output (pure data)."""

from __future__ import annotations

import inspect
import os
import re
import shlex
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from wtflow.errors import WorkflowError, WtflowError, shown
from wtflow.executables import Command, Executable, PyFunc, check_timeout
from wtflow.status import Status

if TYPE_CHECKING:  # what a `when=` callable is given; built by the engine, read-only
    from wtflow.conditions import RunView

STREAMS = ("stdout", "stderr")
RESERVED = (*STREAMS, "result")
RESULT_FILE = "result.json"  # a PyFunc's return value, beside stdout and stderr
# The nodes a PyFunc returned (dynamic children), pickled by the process that ran it.
NODES_FILE = "nodes.pickle"
_ATTEMPT_DIR = re.compile(r"attempt-\d+")
_MAX_NAME_BYTES = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A tag is typed on a command line (`--tag db`) and shown in lists: a plain word.
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:+-]*")


class Secret(str):
    """A string (e.g. an `env` value) that wtflow masks in its record and its output."""

    def __repr__(self) -> str:
        return "'***'"


# Told of each change a run makes to the user's objects (an artifact bound, a node's status):
# a copy of the tree in another process, the local executor's fork server, is kept current so.
WATCHERS: list[Callable[[Artifact | Node], None]] = []


def changed(obj: Artifact | Node) -> None:
    for watcher in WATCHERS:
        watcher(obj)


class Artifact:
    """One output of a node, kept in a file; `data` reads it from disk when asked.

    Every node has `stdout_artifact`, `stderr_artifact` and `result_artifact` (what its PyFunc
    returned, as JSON); `Node(artifacts=[...])` declares files it makes, e.g.
    `Artifact("wheel", file_path="dist/*.whl")`, copied into the run's folder when it ends."""

    def __init__(
        self,
        name: str,
        node_name: str = "",
        *,
        file_path: str | os.PathLike[str] | None = None,
        optional: bool = False,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise WorkflowError(f"artifact name {shown(name)} is empty; give it a name, e.g. 'report'")
        if not isinstance(optional, bool):
            raise WorkflowError(f"artifact {name!r}: optional={shown(optional)} is not True or False")
        self.name = name
        self.node_name = node_name
        self.file_path = None if file_path is None else Path(file_path)
        self.optional = optional
        self._path: Path | None = self.file_path
        self._paths: tuple[Path, ...] | None = None
        # The node whose output this is, so a reader can be checked against the run's order.
        self.owner: Node | None = None

    def bind(self, path: Path, paths: Sequence[Path] | None = None) -> None:
        """Point the handle at the file the engine is writing (the latest attempt's); a declared
        glob's copies are all in `paths`, the first of them in `path`."""
        self._path = path
        self._paths = None if paths is None else tuple(paths)
        changed(self)

    def reset(self) -> None:
        """Back to what it was before the node ran: an attempt that did not produce it must not
        leave it on an earlier attempt's file."""
        self._path = self.file_path
        self._paths = None
        changed(self)

    @property
    def paths(self) -> tuple[Path, ...]:
        """Every file of this artifact: the copies of all the files a declared glob matched."""
        if self._paths is not None:
            return self._paths
        return (self.path,)

    @property
    def path(self) -> Path:
        """The file holding this output."""
        if self._path is None:
            raise WtflowError(
                f"the {self.name} of node {self.node_name!r} has not been produced yet; "
                "read it only after that node ran (e.g. from a node that comes after it)"
            )
        return self._path

    @property
    def data(self) -> bytes:
        """The bytes written so far, read from disk."""
        return self.path.read_bytes()

    @property
    def value(self) -> Any:
        """The object a `result` artifact holds: its JSON decoded."""
        import json  # here: `wtflow list` and `--version` load the model, and never read a result

        return json.loads(self.data)

    def __fspath__(self) -> str:
        """The path, so an artifact can stand in a Command's argv or a node's env."""
        return str(self.path)

    def text(self, encoding: str = "utf-8", errors: str = "replace") -> str:
        """`data` decoded."""
        return self.data.decode(encoding, errors)

    def __repr__(self) -> str:
        return f"Artifact(name={self.name!r}, node={self.node_name!r}, path={self._path})"


def _plain_text_problem(name: object, *, what: str, example: str) -> str | None:
    """What makes `name` unfit to name anything at all, as the rest of an error message."""
    if not isinstance(name, str):
        return f"{what} name {shown(name)} is not a string; give it a name, e.g. name={example!r}"
    if not name.strip():
        return f"{what} name {shown(name)} is empty; give it a name, e.g. name={example!r}"
    try:
        name.encode()
    except UnicodeEncodeError:  # a lone surrogate, as os.listdir gives for an undecodable file name
        return f"{what} name {shown(name)} is not valid text (it holds a lone surrogate); use a name such as {example!r}"
    return None


def _check_name(name: object, *, what: str) -> None:
    general = _plain_text_problem(name, what=what, example="build")
    if general:
        raise WorkflowError(general)
    assert isinstance(name, str)
    problem = None
    if "/" in name or "\\" in name or "\0" in name:
        problem = "contains '/', '\\\\' or NUL, so it cannot name its artifacts folder"
    elif name in (".", ".."):
        problem = "is a relative path component, so it cannot name its artifacts folder"
    elif len(name.encode()) > _MAX_NAME_BYTES:
        problem = (
            f"is {len(name.encode())} bytes long, more than the {_MAX_NAME_BYTES} a folder name may take"
        )
    elif _CONTROL.search(name):
        # A newline or an escape sequence in a name would forge lines in logs and the terminal.
        problem = "contains a control character (newline, tab, escape...)"
    if problem:
        raise WorkflowError(f"{what} name {shown(name)} {problem}; use a plain name such as 'unit-tests'")


def check_tag(tag: object, *, source: str) -> str:
    """A tag as given (`Node(tags=...)`, `--tag`): a plain word, refused otherwise."""
    if not isinstance(tag, str) or not _TAG.fullmatch(tag):
        raise WorkflowError(
            f"{source} {shown(tag)} is not a tag; use a plain word such as 'slow' or 'db' "
            "(letters, digits and _ . : + -)"
        )
    return tag


def _takes_one_argument(func: Callable[..., object]) -> bool:
    try:
        inspect.signature(func).bind(None)
    except TypeError:
        return False
    except ValueError:  # no signature to read (some builtins): let the call say
        return True
    return True


def describe_condition(when: object) -> str:
    """A `when=` as `--dry-run` shows it: `False`, or the callable's qualified name."""
    if isinstance(when, bool):
        return repr(when)
    name = getattr(when, "__qualname__", None) or type(when).__qualname__
    module = getattr(when, "__module__", None)
    return f"{module}.{name}" if module and module not in ("__main__", "builtins") else str(name)


def _check_resources(resources: object, *, where: str) -> None:
    if resources is None:
        return
    ok = isinstance(resources, Mapping) and all(
        isinstance(k, str) and k and isinstance(v, int | float) and not isinstance(v, bool) and v > 0
        for k, v in resources.items()
    )
    if not ok:
        raise WorkflowError(
            f"{where}: resources={resources!r} is not a mapping of resource names to amounts > 0; "
            "use e.g. resources={'GPU': 1}"
        )


@dataclass(eq=False)
class Node:
    """A step of the workflow: an optional executable, then its children (in order or in parallel)."""

    name: str
    executable: Executable | None = None
    children: list[Node] = field(default_factory=list)
    parallel: bool = False
    # None: as the nearest ancestor that sets it says (plan.policy_for), else the default.
    allow_failure: bool | None = field(default=None, kw_only=True)
    retries: int | None = field(default=None, kw_only=True)
    retry_delay: float | None = field(default=None, kw_only=True)
    retry_backoff: float | None = field(default=None, kw_only=True)
    retry_on: Sequence[int] | None = field(default=None, kw_only=True)  # kept as a tuple
    env: Mapping[str, str | Artifact] | None = field(default=None, kw_only=True)
    cwd: str | Path | None = field(default=None, kw_only=True)
    # On a node with an executable: each attempt's limit. On a grouping node: a budget for the
    # whole subtree, after which what runs in it is stopped and the rest skipped.
    timeout: float | None = field(default=None, kw_only=True)
    max_parallel: int | None = field(default=None, kw_only=True)  # processes at once in the subtree
    fail_fast: bool = field(default=False, kw_only=True)
    # Runs when its turn comes even after a failure, a deadline or an interrupt (cleanup).
    always: bool = field(default=False, kw_only=True)
    artifacts: list[Artifact] = field(default_factory=list, kw_only=True)
    # What a Dask worker must offer to run it (`dask worker --resources GPU=1`); a cluster notion,
    # so the local executor runs such a node as any other.
    resources: Mapping[str, float] | None = field(default=None, kw_only=True)
    # Decided when the node's turn comes: False, or a callable given the run so far (a
    # conditions.RunView) that returns False, skips the node and its subtree.
    when: bool | Callable[[RunView], object] = field(default=True, kw_only=True)
    # Labels for `wtflow run --tag/--skip-tag`; a node has its ancestors' too (plan.tags).
    tags: Collection[str] = field(default=frozenset(), kw_only=True)  # kept as a frozenset
    # Which ready node takes a free slot first (higher first); None: as the group above says.
    priority: int | None = field(default=None, kw_only=True)
    # Nodes elsewhere in the tree whose whole subtree must have ended before this one starts.
    after: list[Node] = field(default_factory=list, kw_only=True)

    # (workflow token, index) where a Workflow placed it: how a node that a PyFunc's returned nodes
    # refer to (after=, an artifact) is found again when they come back from its process.
    placement: tuple[str, int] | None = field(default=None, init=False, repr=False)
    retcode: int | None = field(default=None, init=False)
    status: Status = field(default=Status.PENDING, init=False)
    attempts: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        _check_name(self.name, what="node")
        where = f"node {self.name!r}"
        if self.executable is not None and not isinstance(self.executable, Command | PyFunc):
            raise WorkflowError(
                f"{where}: executable={self.executable!r} is not a Command or a PyFunc; "
                "wrap it, e.g. executable=wtflow.Command('make') or wtflow.PyFunc(func=build)"
            )
        if not isinstance(self.children, list | tuple):
            raise WorkflowError(f"{where}: children={self.children!r} is not a list of nodes")
        self.children = list(self.children)
        for child in self.children:
            if not isinstance(child, Node):
                raise WorkflowError(f"{where}: child {child!r} is not a Node; wrap it in wtflow.Node(...)")
        _check_resources(self.resources, where=where)
        self._check_after(where)
        if self.retries is not None and (
            isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0
        ):
            raise WorkflowError(f"{where}: retries={self.retries!r} is not a whole number >= 0; use e.g. 2")
        if self.max_parallel is not None and (
            isinstance(self.max_parallel, bool)
            or not isinstance(self.max_parallel, int)
            or self.max_parallel < 1
        ):
            raise WorkflowError(
                f"{where}: max_parallel={self.max_parallel!r} is not a whole number >= 1; use e.g. 2"
            )
        for flag in ("allow_failure", "fail_fast", "always"):
            value = getattr(self, flag)
            if value is not None and not isinstance(value, bool):
                raise WorkflowError(f"{where}: {flag}={value!r} is not True or False")
        for attr in ("retry_delay", "retry_backoff"):
            value = getattr(self, attr)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise WorkflowError(f"{where}: {attr}={value!r} is not a number >= 0; use e.g. 1.5")
        if self.retry_on is not None:
            self.retry_on = tuple(self.retry_on)
            if not all(isinstance(c, int) and not isinstance(c, bool) for c in self.retry_on):
                raise WorkflowError(f"{where}: retry_on={self.retry_on!r} is not a list of exit codes")
        self._check_env(where)
        if self.cwd is not None and (
            not isinstance(self.cwd, str | os.PathLike) or "\0" in os.fspath(self.cwd)
        ):
            raise WorkflowError(
                f"{where}: cwd={shown(self.cwd)} is not a folder path; use e.g. cwd='build' or cwd=Path('build')"
            )
        check_timeout(self.timeout, owner=f"Node({self.name!r})")
        self._check_artifacts()
        self._check_decisions()
        self.stdout_artifact = Artifact("stdout", self.name)
        self.stderr_artifact = Artifact("stderr", self.name)
        self.result_artifact = Artifact("result", self.name)
        for artifact in (self.stdout_artifact, self.stderr_artifact, self.result_artifact, *self.artifacts):
            artifact.owner = self
            artifact.node_name = artifact.node_name or self.name

    def _check_env(self, where: str) -> None:
        if self.env is None:
            return
        if not isinstance(self.env, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str | Artifact) for k, v in self.env.items()
        ):
            raise WorkflowError(
                f"{where}: env must map str to str (or an artifact, for its path), e.g. env={{'DEBUG': '1'}}"
            )
        for key, value in self.env.items():
            # What the OS would refuse at exec time, refused here so the run never starts half-way.
            if not key or "=" in key or "\0" in key:
                raise WorkflowError(
                    f"{where}: env name {shown(key)} cannot name an environment variable "
                    "(empty, or holding '=' or NUL); use a name such as 'DEBUG'"
                )
            if isinstance(value, str) and "\0" in value:
                raise WorkflowError(
                    f"{where}: env {key}={shown(value)} holds a NUL byte, which no environment "
                    "variable can carry; remove it"
                )

    def _check_after(self, where: str) -> None:
        if not isinstance(self.after, list | tuple) or not all(isinstance(n, Node) for n in self.after):
            raise WorkflowError(
                f"{where}: after={shown(self.after)} is not a list of Nodes; "
                "use e.g. after=[build], with build a wtflow.Node of the same tree"
            )
        if any(n is self for n in self.after):
            raise WorkflowError(f"{where}: after= names the node itself; a node cannot wait for itself")
        self.after = list(self.after)

    @overload
    def __rshift__(self, other: Node) -> Node: ...
    @overload
    def __rshift__(self, other: Sequence[Node]) -> Sequence[Node]: ...
    def __rshift__(self, other: Node | Sequence[Node]) -> Node | Sequence[Node]:
        """`a >> b`: b waits for a (`b.after` gains a); returns b, so `a >> b >> c` chains.
        `a >> [b, c]` makes both wait for a and returns the list."""
        for node in [other] if isinstance(other, Node) else list(other):
            if not isinstance(node, Node):
                raise WorkflowError(f"node {self.name!r} >> {shown(node)}: only a Node can wait for a node")
            if node is self:
                raise WorkflowError(f"node {self.name!r} >> itself: a node cannot wait for itself")
            if not any(n is self for n in node.after):
                node.after.append(self)
        return other

    def __rrshift__(self, other: Sequence[Node]) -> Node:
        """`[a, b] >> c`: c waits for both; returns c."""
        for node in list(other):
            if not isinstance(node, Node):
                raise WorkflowError(f"{shown(node)} >> node {self.name!r}: only a Node can wait for a node")
            node >> self
        return self

    def _check_artifacts(self) -> None:
        if not isinstance(self.artifacts, list | tuple) or not all(
            isinstance(a, Artifact) for a in self.artifacts
        ):
            raise WorkflowError(
                f"node {self.name!r}: artifacts={shown(self.artifacts)} is not a list of Artifacts; "
                "use e.g. artifacts=[wtflow.Artifact('report', file_path='out/report.json')]"
            )
        self.artifacts = list(self.artifacts)
        names = [a.name for a in self.artifacts]
        if any(name in RESERVED for name in names):
            raise WorkflowError("`stdout`, `stderr` and `result` are reserved artifact names")
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise WorkflowError(
                f"node {self.name!r}: two artifacts are named {twice[0]!r}; give each its own name"
            )
        for artifact in self.artifacts:
            # Its copies go in a folder of that name inside the node's own folder.
            _check_name(artifact.name, what="artifact")
            if artifact.file_path is None:
                raise WorkflowError(
                    f"node {self.name!r}: artifact {artifact.name!r} has no file_path; say which file "
                    "the node makes, e.g. wtflow.Artifact('wheel', file_path='dist/*.whl')"
                )

    def _check_decisions(self) -> None:
        where = f"node {self.name!r}"
        if not isinstance(self.when, bool) and not callable(self.when):
            raise WorkflowError(
                f"{where}: when={shown(self.when)} is neither True/False nor a callable; "
                "use e.g. when=lambda run: 'deploy' in run.flags"
            )
        if callable(self.when) and not _takes_one_argument(self.when):
            raise WorkflowError(
                f"{where}: when={describe_condition(self.when)} cannot be called with one argument "
                "(the run so far); use e.g. when=lambda run: run.status(build) == 'succeeded'"
            )
        if isinstance(self.tags, str) or not isinstance(self.tags, Collection):
            raise WorkflowError(
                f"{where}: tags={shown(self.tags)} is not a set of tags; use e.g. tags={{'slow', 'db'}}"
            )
        for tag in self.tags:
            check_tag(tag, source=f"{where}: tag")
        self.tags = frozenset(self.tags)
        if self.priority is not None and (
            isinstance(self.priority, bool) or not isinstance(self.priority, int)
        ):
            raise WorkflowError(
                f"{where}: priority={shown(self.priority)} is not a whole number; use e.g. priority=10 "
                "(higher starts first when more nodes are ready than slots)"
            )

    @property
    def effective_timeout(self) -> float | None:
        """The node's own limit, else its executable's."""
        if self.timeout is not None:
            return self.timeout
        return self.executable.timeout if self.executable is not None else None

    def artifact(self, name: str) -> Artifact:
        """The handle on an output: 'stdout', 'stderr', 'result' or a declared artifact's name."""
        if name in RESERVED:
            return {"stdout": self.stdout_artifact, "stderr": self.stderr_artifact,
                    "result": self.result_artifact}[name]  # fmt: skip
        for artifact in self.artifacts:
            if artifact.name == name:
                return artifact
        known = ", ".join([*RESERVED, *(a.name for a in self.artifacts)])
        raise WtflowError(f"node {self.name!r} has no artifact {name!r}; it has {known}")

    def __repr__(self) -> str:
        return f"Node(name={self.name!r}, executable={self.executable!r}, children={len(self.children)})"


@dataclass(frozen=True, slots=True)
class Placed:
    """A node with its place in the tree: preorder index, path of folder names, parent index, position."""

    index: int
    path: tuple[str, ...]
    parent: int | None
    position: int
    node: Node

    @property
    def path_str(self) -> str:
        return "/".join(self.path)


@dataclass(eq=False)
class Workflow:
    """A named tree of nodes."""

    name: str
    root: Node

    def __post_init__(self) -> None:
        general = _plain_text_problem(self.name, what="workflow", example="ci")
        if general:
            raise WorkflowError(general)
        if _CONTROL.search(self.name):
            raise WorkflowError(
                f"workflow name {shown(self.name)} contains a control character (NUL, newline, escape...); "
                "use a plain name such as 'ci'"
            )
        if len(self.name.encode()) > _MAX_NAME_BYTES:
            raise WorkflowError(
                f"workflow name {shown(self.name)} is {len(self.name.encode())} bytes long, "
                f"more than the {_MAX_NAME_BYTES} allowed; use a short name such as 'ci'"
            )
        if not isinstance(self.root, Node):
            raise WorkflowError(
                f"workflow {self.name!r}: root={self.root!r} is not a Node; pass root=wtflow.Node(...)"
            )
        self.placed: list[Placed] = []
        self.children_of: dict[int, list[Placed]] = {}
        self._where: dict[int, tuple[str, ...]] = {}  # id(node): its path, to refuse a node placed twice
        self._index: dict[int, int] = {}  # id(node): its index
        self.grown = False  # nodes were added at run time (see grow): subtrees are no longer one block
        # Random like a uuid4, without importing uuid (and platform with it) into every CLI start.
        self.token = os.urandom(16).hex()  # tells this workflow's nodes apart in another process
        self._extend(list(self._place([(self.root, (self.root.name,), None, 0)])))
        self._static = len(self.placed)

    def index_of(self, node: Node) -> int | None:
        """The preorder index of a node placed in this workflow, else None."""
        return self._index.get(id(node))

    def grow(self, parent: int, nodes: Sequence[Node]) -> list[Placed]:
        """Place `nodes` (a PyFunc's dynamic children) as the last children of node `parent`, with
        the indices after every node placed so far; returns them (and their subtrees) in preorder.

        Refused with a WorkflowError, leaving the tree as it was, when a node is already placed
        (or twice among them) or a name is unusable."""
        under = self.placed[parent]
        siblings = self.children_of[under.index]
        folders = _more_folder_names([c.path[-1] for c in siblings], [n.name for n in nodes])
        declared = {a.name for a in under.node.artifacts}
        for node in nodes:
            if _reserved(node.name) or node.name in declared:
                raise WorkflowError(
                    f"workflow {self.name!r}: child name {node.name!r} of {under.path_str} is reserved "
                    "for artifact files; rename the node"
                )
        start = len(siblings)
        items: list[tuple[Node, tuple[str, ...], int | None, int]] = [
            (n, (*under.path, folders[i]), under.index, start + i) for i, n in enumerate(nodes)
        ]
        where = dict(self._where)
        added = list(self._place(items[::-1], where))
        self._where = where
        self._extend(added)
        self.grown = True
        return added

    def trim(self, keep: int | None = None) -> None:
        """Forget the nodes grown by an earlier run (`grow`): each run starts from the tree as
        written. `keep`: only those placed after the first `keep` (a growth that was refused)."""
        static = self._static if keep is None else keep
        if len(self.placed) == static:
            return
        for p in self.placed[static:]:
            del self.children_of[p.index]
            del self._index[id(p.node)]
            del self._where[id(p.node)]
            p.node.placement = None
        del self.placed[static:]
        for children in self.children_of.values():
            children[:] = [c for c in children if c.index < static]
        self.grown = static > self._static

    def _extend(self, added: list[Placed]) -> None:
        self.placed.extend(added)
        for p in added:
            self.children_of[p.index] = []
            self._index[id(p.node)] = p.index
            p.node.placement = (self.token, p.index)
            if p.parent is not None:
                self.children_of[p.parent].append(p)

    def _place(
        self,
        stack: list[tuple[Node, tuple[str, ...], int | None, int]],
        seen: dict[int, tuple[str, ...]] | None = None,
    ) -> Iterator[Placed]:
        seen = self._where if seen is None else seen
        index = len(self.placed)
        while stack:
            node, path, parent, position = stack.pop()
            if id(node) in seen:
                raise WorkflowError(
                    f"workflow {self.name!r}: node {node.name!r} is placed twice "
                    f"(at {'/'.join(seen[id(node)])} and {'/'.join(path)}); "
                    "create a separate Node for each place"
                )
            seen[id(node)] = path
            _check_name(node.name, what="node")  # again: a name may have been changed since
            _check_group_options(node, "/".join(path))
            yield Placed(index, path, parent, position, node)
            declared = {a.name for a in node.artifacts}
            for child in node.children:
                if _reserved(child.name) or child.name in declared:
                    raise WorkflowError(
                        f"workflow {self.name!r}: child name {child.name!r} of {'/'.join(path)} is reserved "
                        "for artifact files; rename the node"
                    )
            me = index
            index += 1
            folders = folder_names([child.name for child in node.children])
            for pos in range(len(node.children) - 1, -1, -1):
                stack.append((node.children[pos], (*path, folders[pos]), me, pos))

    @property
    def nodes(self) -> list[Node]:
        """Every node, in preorder."""
        return [p.node for p in self.placed]

    def render(
        self,
        selected: Collection[int] | None = None,
        *,
        explained: Mapping[int, str] | None = None,
        waits: Mapping[int, Sequence[int]] | None = None,
    ) -> str:
        """The tree as text, with what each node would execute as you would type it in a shell
        and the artifacts it leaves (what `--dry-run` prints); only the nodes whose index is in
        `selected`, when given. With `explained` (a decision by index: `run: command changed`,
        `skip: not selected`), every node, each with its decision; a skipped one without its details.
        `waits` (dependencies.waits, implied reads among them): what each node waits for; without
        it, what its `after=` names."""
        lines = [f"Workflow: {self.name}"]
        for p in self.placed:
            decision = None if explained is None else explained.get(p.index)
            if explained is None and selected is not None and p.index not in selected:
                continue
            node = p.node
            indent = "  " * (len(p.path) - 1)
            flags = _flags(p)
            suffix = f"  [{', '.join(flags)}]" if flags else ""
            lines.append(f"{indent}- {node.name}{suffix}" + (f"  {decision}" if decision else ""))
            if decision is None or not decision.startswith("skip:"):
                after = [self.index_of(n) for n in node.after] if waits is None else waits.get(p.index, ())
                if after:
                    names = ", ".join(self.placed[i].path_str if i is not None else "?" for i in after)
                    lines.append(f"{indent}    after: {names}")
                lines.extend(f"{indent}    {line}" for line in _details(node))
        return "\n".join(lines) + "\n"


def _flags(p: Placed) -> list[str]:
    node, flags = p.node, []
    if p.path[-1] != node.name:
        flags.append(f"folder {p.path[-1]}")
    grows = isinstance(node.executable, PyFunc) and node.executable.may_grow
    if node.parallel and (node.children or grows):  # a grown node's children run so
        flags.append("parallel")
    if node.allow_failure:
        flags.append("allow_failure")
    if node.fail_fast:
        flags.append("fail_fast")
    if node.always:
        flags.append("always")
    if node.max_parallel is not None:
        flags.append(f"max_parallel={node.max_parallel}")
    if node.retries:
        flags.append(f"retries={node.retries}")
    if node.priority is not None:
        flags.append(f"priority={node.priority}")
    if node.tags:
        flags.append(f"tags={','.join(sorted(node.tags))}")
    if grows:
        flags.append("may grow children")
    if node.executable is None and node.timeout is not None:
        flags.append(f"budget={node.timeout:g}s")
    elif node.effective_timeout is not None:
        flags.append(f"timeout={node.effective_timeout:g}s")
    return flags


def _details(node: Node) -> Iterator[str]:
    """What a node runs, where and with what, as typed in a shell, and the artifacts it leaves."""
    if node.when is not True:
        yield f"when: {describe_condition(node.when)}"
    if node.cwd is not None:
        yield f"cwd: {shlex.quote(str(node.cwd))}"
    if node.env:
        yield "env: " + " ".join(f"{k}={_shell_value(v)}" for k, v in node.env.items())
    if isinstance(node.executable, Command):
        yield f"$ {node.executable.describe()}"
    elif isinstance(node.executable, PyFunc):
        yield f"call: {describe_call(node.executable)}"
    left = [f"result ({RESULT_FILE})"] if isinstance(node.executable, PyFunc) else []
    for a in node.artifacts:
        left.append(f"{a.name} ({a.file_path}{', optional' if a.optional else ''})")
    if left:
        yield f"artifacts: {', '.join(left)}"


def _check_group_options(node: Node, path: str) -> None:
    """Refuse the options that would do nothing where they are set: none is silently ignored."""
    if node.max_parallel is not None and not node.children:
        raise WorkflowError(
            f"node {path}: max_parallel={node.max_parallel} caps the processes of a node's children, "
            "and it has none; set it on the group above, or use the run's max_parallel setting"
        )
    if node.fail_fast and not (node.parallel and node.children):
        raise WorkflowError(
            f"node {path}: fail_fast=True stops the running siblings of a parallel group, and it is "
            "not one; set parallel=True (a sequence already stops at its first failure)"
        )


def _reserved(name: str) -> bool:
    return name in STREAMS or name in (RESULT_FILE, NODES_FILE) or _ATTEMPT_DIR.fullmatch(name) is not None


def folder_names(names: list[str]) -> list[str]:
    """Each sibling's folder name (its place in paths, the record, `logs` and `--only`).

    A name used once is its own folder. The second and later siblings of one name get
    `name-2`, `name-3`, ...: the first such number that no sibling is named, so a real sibling
    named `twin-2` keeps its name and the copy becomes `twin-3`. (Copies of `attempt` get
    `attempt_2`, ...: `attempt-2` names a retry's folder.)"""
    taken = set(names)
    count: dict[str, int] = {}
    folders = []
    for name in names:
        if name not in count:
            count[name] = 1
            folders.append(name)
            continue
        sep = "_" if _reserved(f"{name}-2") else "-"
        number = count[name] + 1
        while f"{name}{sep}{number}" in taken:
            number += 1
        count[name] = number
        taken.add(f"{name}{sep}{number}")
        folders.append(f"{name}{sep}{number}")
    return folders


def _more_folder_names(taken: list[str], names: list[str]) -> list[str]:
    """Folder names for children added after those already named `taken` (which keep theirs)."""
    used = set(taken)
    folders = []
    for name in names:
        folder, number = name, 1
        sep = "_" if _reserved(f"{name}-2") else "-"
        while folder in used:
            number += 1
            folder = f"{name}{sep}{number}"
        used.add(folder)
        folders.append(folder)
    return folders


def _shell_value(value: str | Artifact) -> str:
    if isinstance(value, Artifact):
        return shlex.quote(_argument(value))
    return "***" if isinstance(value, Secret) else shlex.quote(value)


def _argument(value: Any) -> str:
    if isinstance(value, Artifact):
        return f"<{value.name} of {value.node_name!r}>"
    if isinstance(value, Secret):
        return "***"
    return shown(value)


def describe_call(func: PyFunc) -> str:
    """`module.function(arg, key=value)`: arguments cut short, artifacts by whose output they are."""
    args = [_argument(a) for a in func.args]
    args += [f"{k}={_argument(v)}" for k, v in func.kwargs.items()]
    return f"{func.describe()}({', '.join(args)})"
