# mypy: disable-error-code="redundant-expr"
# (the checks below guard against callers who ignore the annotations)
"""The tree: `Workflow`, `Node` and the `Artifact` handles on a node's output (pure data)."""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wtflow.errors import WorkflowError, WtflowError
from wtflow.executables import Command, Executable, PyFunc, check_timeout
from wtflow.status import Status

STREAMS = ("stdout", "stderr")
RESERVED = (*STREAMS, "result")
RESULT_FILE = "result.json"  # a PyFunc's return value, beside stdout and stderr
_ATTEMPT_DIR = re.compile(r"attempt-\d+")
_MAX_NAME_BYTES = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Secret(str):
    """A string (e.g. an `env` value) that wtflow masks in its record and its output."""

    def __repr__(self) -> str:
        return "'***'"


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

    def reset(self) -> None:
        """Back to what it was before the node ran: an attempt that did not produce it must not
        leave it on an earlier attempt's file."""
        self._path = self.file_path
        self._paths = None

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
        return json.loads(self.data)

    def __fspath__(self) -> str:
        """The path, so an artifact can stand in a Command's argv or a node's env."""
        return str(self.path)

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
        if self.env is not None and not all(
            isinstance(k, str) and isinstance(v, str | Artifact) for k, v in dict(self.env).items()
        ):
            raise WorkflowError(
                f"{where}: env must map str to str (or an artifact, for its path), e.g. env={{'DEBUG': '1'}}"
            )
        check_timeout(self.timeout, owner=f"Node({self.name!r})")
        self._check_artifacts()
        self.stdout_artifact = Artifact("stdout", self.name)
        self.stderr_artifact = Artifact("stderr", self.name)
        self.result_artifact = Artifact("result", self.name)
        for artifact in (self.stdout_artifact, self.stderr_artifact, self.result_artifact, *self.artifacts):
            artifact.owner = self
            artifact.node_name = artifact.node_name or self.name

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
        self, selected: Collection[int] | None = None, *, explained: Mapping[int, str] | None = None
    ) -> str:
        """The tree as text, with what each node would execute as you would type it in a shell
        and the artifacts it leaves (what `--dry-run` prints); only the nodes whose index is in
        `selected`, when given. With `explained` (a decision by index: `run: command changed`,
        `skip: not selected`), every node, each with its decision; a skipped one without its details."""
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
                lines.extend(f"{indent}    {line}" for line in _details(node))
        return "\n".join(lines) + "\n"


def _flags(p: Placed) -> list[str]:
    node, flags = p.node, []
    if p.path[-1] != node.name:
        flags.append(f"folder {p.path[-1]}")
    if node.parallel and node.children:
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
    if node.executable is None and node.timeout is not None:
        flags.append(f"budget={node.timeout:g}s")
    elif node.effective_timeout is not None:
        flags.append(f"timeout={node.effective_timeout:g}s")
    return flags


def _details(node: Node) -> Iterator[str]:
    """What a node runs, where and with what, as typed in a shell, and the artifacts it leaves."""
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
    return name in STREAMS or name == RESULT_FILE or _ATTEMPT_DIR.fullmatch(name) is not None


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
