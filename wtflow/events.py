"""What the engine says happened; listeners (console, recorder, reports) subscribe to these.

RunStarted ─┬─ NodeStarted ── OutputReceived* ── [NodeStopping] ── NodeFinished
            │                             (per attempt of an executable; NodeStopping when its
            │                             processes are being stopped: time limit, cancel)
            ├─ NodesAdded                 a PyFunc returned nodes (dynamic children): sent before
            │                             its NodeFinished, they then run like any other
            ├─ NodeFinished(attempt=0)    a node that did not run an attempt: skipped, cancelled
            │                             before it began, or a grouping node (no executable)
            │                             ending with its children
            └─ RunFinished                with the exit code wtflow returns (130/143 interrupted)

The listeners that receive these are in listeners.py.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from wtflow.executables import Command
from wtflow.model import Placed
from wtflow.status import Status


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """A node's place in the tree and what it executes, as the record keeps it."""

    index: int
    path: tuple[str, ...]  # folder names: a same-named sibling's is e.g. `twin-2` (model.folder_names)
    parent: int | None
    position: int
    kind: str | None  # "command", "pyfunc" or None for a grouping node
    executes: str | None
    parallel: bool
    allow_failure: bool
    name: str = ""  # the node's own name; "" means the last folder name of its path

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.path[-1])

    decision: str | None = None  # "run: command changed", "reuse: succeeded in 3f2a...", "skip: ..."
    tags: tuple[str, ...] = ()  # its own and its ancestors' (plan.node_tags), sorted
    depends_on: tuple[str, ...] = ()  # the paths of the nodes it waits for (after=, artifacts it reads)
    dynamic: bool = False  # added at run time: returned by its parent's PyFunc (NodesAdded)


@dataclass(frozen=True, slots=True)
class KeptFile:
    """A file an attempt left for later, kept in its folder: its `result` or a declared file."""

    name: str  # "result", or the declared artifact's name
    path: Path  # the copy in the attempt's folder
    size: int
    sha256: str
    kind: str  # "result" | "file"
    source: str | None = None  # a declared file: where the node made it, relative to its cwd


@dataclass(frozen=True, slots=True)
class RunStarted:
    run_id: str
    workflow: str
    started_at: datetime
    run_dir: Path
    nodes: tuple[NodeSpec, ...]
    config: dict[str, Any]
    resumed_from: str | None = None  # the run whose results this one reuses (--resume)
    params: dict[str, Any] | None = None  # the workflow function's parameters, when it has any
    provenance: dict[str, Any] | None = None  # command line, wtfile, git, selection (wtflow run)


@dataclass(frozen=True, slots=True)
class NodesAdded:
    """A PyFunc returned nodes: they join the tree as the last children of `parent` (its index),
    with the indices after every node so far; `nodes` are they and their subtrees, in preorder."""

    run_id: str
    parent: int
    nodes: tuple[NodeSpec, ...]


@dataclass(frozen=True, slots=True)
class NodeStarted:
    run_id: str
    index: int
    path: tuple[str, ...]
    attempt: int
    started_at: datetime
    stdout_path: Path | None
    stderr_path: Path | None
    pid: int | None  # None where there is no local process: it could not start, or runs elsewhere
    host: str | None = None
    digest: str | None = None  # wtflow.digests.Digest of what it runs
    reused_from: str | None = None  # no process: the result of that run's node is reused


@dataclass(frozen=True, slots=True)
class OutputReceived:
    run_id: str
    index: int
    path: tuple[str, ...]
    stream: str  # "stdout" | "stderr"
    data: bytes


@dataclass(frozen=True, slots=True)
class NodeFinished:
    run_id: str
    index: int
    path: tuple[str, ...]
    attempt: int  # 0 when no attempt of it ran: skipped, cancelled before it began, a grouping node
    status: Status
    exit_code: int | None  # negative: killed by that signal, as in subprocess
    started_at: datetime | None
    ended_at: datetime
    will_retry: bool = False
    stdout_size: int = 0
    stderr_size: int = 0
    # How the two streams alternated: (("stdout", 120), ("stderr", 31), ...) in bytes; None when
    # they alternated too often to keep (then a reader shows one after the other).
    output_order: tuple[tuple[str, int], ...] | None = ()
    # The attempt's result and declared files, copied into its folder once it ended.
    kept: tuple[KeptFile, ...] = ()
    # With will_retry: when the next attempt is due (after the retry delay); None if not known.
    retry_at: datetime | None = None
    # Why a skipped node did not run: "upstream failed: ci/build", "not selected", "fail-fast",
    # "timed out: ci/checks" (its group's budget ran out), ...; None otherwise.
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class NodeStopping:
    """An attempt's processes are being stopped: SIGTERM sent, SIGKILL after the kill grace.

    Sent when a time limit fires or the attempt is cancelled (Ctrl-C, a failed sibling); its
    NodeFinished follows once the processes are gone."""

    run_id: str
    index: int
    path: tuple[str, ...]
    attempt: int
    reason: str  # "timed out" | "cancelled"
    at: datetime


@dataclass(frozen=True, slots=True)
class RunFinished:
    run_id: str
    status: Status
    exit_code: int
    ended_at: datetime
    counts: dict[str, int]


Event = RunStarted | NodesAdded | NodeStarted | OutputReceived | NodeStopping | NodeFinished | RunFinished


def node_spec(
    p: Placed,
    decision: str | None = None,
    allow_failure: bool | None = None,
    tags: Collection[str] | None = None,
    depends_on: tuple[str, ...] = (),
    dynamic: bool = False,
) -> NodeSpec:
    """What RunStarted (or NodesAdded) says of a node; `allow_failure` and `tags` as resolved
    from its ancestors, if known (else its own); `depends_on` the paths it waits for."""
    executable = p.node.executable
    kind = None if executable is None else ("command" if isinstance(executable, Command) else "pyfunc")
    return NodeSpec(
        p.index,
        p.path,
        p.parent,
        p.position,
        kind,
        None if executable is None else executable.describe(),
        p.node.parallel,
        bool(p.node.allow_failure if allow_failure is None else allow_failure),
        p.node.name,
        decision,
        tuple(sorted(p.node.tags if tags is None else tags)),
        depends_on,
        dynamic,
    )
