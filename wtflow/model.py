# mypy: disable-error-code="redundant-expr"
# (the checks below guard against callers who ignore the annotations)
"""The tree: `Workflow`, `Node` and the `Artifact` handles on a node's output (pure data)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from wtflow.errors import WorkflowError, WtflowError
from wtflow.executables import Command, Executable, PyFunc, check_timeout
from wtflow.status import Status

STREAMS = ("stdout", "stderr")
_ATTEMPT_DIR = re.compile(r"attempt-\d+")
_MAX_NAME_BYTES = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Secret(str):
    """A string (e.g. an `env` value) that wtflow masks in its record and its output."""

    def __repr__(self) -> str:
        return "'***'"


class Artifact:
    """One output stream of a node, kept in a file; `data` reads it from disk when asked."""

    def __init__(self, name: str, node_name: str = "") -> None:
        self.name = name
        self.node_name = node_name
        self._path: Path | None = None

    def bind(self, path: Path) -> None:
        """Point the handle at the file the engine is writing (the latest attempt's)."""
        self._path = path

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

    def text(self, encoding: str = "utf-8", errors: str = "replace") -> str:
        """`data` decoded."""
        return self.data.decode(encoding, errors)

    def __repr__(self) -> str:
        return f"Artifact(name={self.name!r}, node={self.node_name!r}, path={self._path})"


def shown(value: object, limit: int = 60) -> str:
    """`repr(value)`, cut short: an error message stays one readable line whatever it quotes."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-2:]}"


def _check_name(name: object, *, what: str) -> None:
    if not isinstance(name, str) or not name.strip():
        raise WorkflowError(f"{what} name {shown(name)} is empty; give it a name, e.g. name='build'")
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
    allow_failure: bool = field(default=False, kw_only=True)
    retries: int = field(default=0, kw_only=True)
    retry_delay: float = field(default=1.0, kw_only=True)
    retry_backoff: float = field(default=2.0, kw_only=True)
    retry_on: tuple[int, ...] | None = field(default=None, kw_only=True)
    env: Mapping[str, str] | None = field(default=None, kw_only=True)
    cwd: str | Path | None = field(default=None, kw_only=True)
    timeout: float | None = field(default=None, kw_only=True)
    # What a Dask worker must offer to run it (`dask worker --resources GPU=1`); a cluster notion,
    # so the local executor runs such a node as any other.
    resources: Mapping[str, float] | None = field(default=None, kw_only=True)

    retcode: int | None = field(default=None, init=False)
    status: Status = field(default=Status.PENDING, init=False)
    attempts: int = field(default=0, init=False)
    id: str = field(default_factory=lambda: uuid.uuid4().hex, init=False, repr=False)

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
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise WorkflowError(f"{where}: retries={self.retries!r} is not a whole number >= 0; use e.g. 2")
        for attr in ("retry_delay", "retry_backoff"):
            value = getattr(self, attr)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise WorkflowError(f"{where}: {attr}={value!r} is not a number >= 0; use e.g. 1.5")
        if self.retry_on is not None:
            self.retry_on = tuple(self.retry_on)
            if not all(isinstance(c, int) and not isinstance(c, bool) for c in self.retry_on):
                raise WorkflowError(f"{where}: retry_on={self.retry_on!r} is not a list of exit codes")
        if self.env is not None and not all(
            isinstance(k, str) and isinstance(v, str) for k, v in dict(self.env).items()
        ):
            raise WorkflowError(f"{where}: env must map str to str, e.g. env={{'DEBUG': '1'}}")
        check_timeout(self.timeout, owner=f"Node({self.name!r})")
        self.stdout_artifact = Artifact("stdout", self.name)
        self.stderr_artifact = Artifact("stderr", self.name)

    @property
    def effective_timeout(self) -> float | None:
        """The node's own limit, else its executable's."""
        if self.timeout is not None:
            return self.timeout
        return self.executable.timeout if self.executable is not None else None

    def artifact(self, stream: str) -> Artifact:
        """The handle on `stream` ('stdout' or 'stderr')."""
        return self.stdout_artifact if stream == "stdout" else self.stderr_artifact

    def __repr__(self) -> str:
        return f"Node(name={self.name!r}, executable={self.executable!r}, children={len(self.children)})"


@dataclass(frozen=True, slots=True)
class Placed:
    """A node with its place in the tree: preorder index, path of names, parent index, position."""

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
    id: str = field(default_factory=lambda: uuid.uuid4().hex, init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise WorkflowError(f"workflow name {shown(self.name)} is empty; give it a name, e.g. name='ci'")
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
        self.placed = tuple(self._place())
        self.children_of: dict[int, list[Placed]] = {p.index: [] for p in self.placed}
        for p in self.placed:
            if p.parent is not None:
                self.children_of[p.parent].append(p)

    def _place(self) -> Iterator[Placed]:
        seen: dict[int, tuple[str, ...]] = {}
        stack: list[tuple[Node, tuple[str, ...], int | None, int]] = [(self.root, (self.root.name,), None, 0)]
        index = 0
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
            yield Placed(index, path, parent, position, node)
            names: set[str] = set()
            for child in node.children:
                if child.name in names:
                    raise WorkflowError(
                        f"workflow {self.name!r}: two children of {'/'.join(path)} are named {child.name!r}; "
                        "sibling names must differ because each names its artifacts folder"
                    )
                if child.name in STREAMS or _ATTEMPT_DIR.fullmatch(child.name):
                    raise WorkflowError(
                        f"workflow {self.name!r}: child name {child.name!r} of {'/'.join(path)} is reserved "
                        "for artifact files; rename the node"
                    )
                names.add(child.name)
            me = index
            index += 1
            for pos in range(len(node.children) - 1, -1, -1):
                child = node.children[pos]
                stack.append((child, (*path, child.name), me, pos))

    @property
    def nodes(self) -> list[Node]:
        """Every node, in preorder."""
        return [p.node for p in self.placed]

    def render(self, selected: Collection[int] | None = None) -> str:
        """The tree as text, with what each node would execute (what `--dry-run` prints);
        only the nodes whose index is in `selected`, when given."""
        lines = [f"Workflow: {self.name}"]
        for p in self.placed:
            if selected is not None and p.index not in selected:
                continue
            indent = "  " * (len(p.path) - 1)
            flags = []
            if p.node.parallel and p.node.children:
                flags.append("parallel")
            if p.node.allow_failure:
                flags.append("allow_failure")
            if p.node.retries:
                flags.append(f"retries={p.node.retries}")
            if p.node.effective_timeout is not None:
                flags.append(f"timeout={p.node.effective_timeout:g}s")
            suffix = f"  [{', '.join(flags)}]" if flags else ""
            lines.append(f"{indent}- {p.node.name}{suffix}")
            if p.node.executable is not None:
                lines.append(f"{indent}  Executable: {p.node.executable!r}")
            if p.node.env:
                shown = ", ".join(f"{k}={v!r}" for k, v in p.node.env.items())
                lines.append(f"{indent}  Env: {shown}")
        return "\n".join(lines) + "\n"
