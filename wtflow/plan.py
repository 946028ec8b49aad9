"""Pure decisions over a workflow and its settings: nothing here runs, reads a clock or does I/O.

selection(workflow, only)    the nodes an `--only` predicate and `--tag`/`--skip-tag` select
check_tags(used, given)      each tag asked for is one some node sets
node_tags(workflow)          every node's tags: its own and its ancestors'
subtree(workflow, index)     a node and everything under it
policy_for(placed, config)   the rules a node runs under (time limit, retries, env, ...),
                             from the node and its ancestors; policies() for every node
attempt_env(...)             the environment changes of one attempt
slots(config, capacity)      how many attempts run at once: max_parallel, or the cluster's threads
with_paths(executable, env)  artifacts in a Command's argv or env replaced by their paths
attempt_status(result)       an executor's result as a node status
should_retry / retry_delay   whether another attempt comes, and after how long
group_status(...)            how a grouping node ends, from its children
verdict(outcome, signal)     the run's status and exit code
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from wtflow.config import Config
from wtflow.errors import LookupFailed
from wtflow.executables import Command, Executable
from wtflow.model import Artifact, Placed, Workflow, check_tag
from wtflow.status import Status

if TYPE_CHECKING:  # the plan reads a result; it needs no executor
    from wtflow.executors import ExecResult

EXIT_OK, EXIT_FAILED = 0, 1
JITTER = (0.8, 1.2)  # retries of many nodes failing together spread out instead of retrying in step


def selection(
    workflow: Workflow,
    only: Callable[[Placed], bool] | None,
    *,
    tags: Collection[str] = (),
    skip_tags: Collection[str] = (),
) -> frozenset[int] | None:
    """The indices `only` and the tags select, None for all.

    A chosen node brings its whole subtree, and the ancestors on the way to it (whose own
    executables run first, as `make` builds prerequisites). With `tags`, a node is chosen when it
    has one of them; with `only` as well, a node must be selected by both. `skip_tags` then
    leaves out every node that has one of those (its subtree has them too, its ancestors may not:
    what is left still holds the way to each node)."""
    chosen = None if only is None else _chosen(workflow, only)
    if tags or skip_tags:
        found = node_tags(workflow)
        wanted, unwanted = frozenset(tags), frozenset(skip_tags)
        if wanted:
            tagged = _chosen(workflow, lambda p: not wanted.isdisjoint(found[p.index]))
            chosen = tagged if chosen is None else chosen & tagged
        if unwanted:
            kept = frozenset(p.index for p in workflow.placed if unwanted.isdisjoint(found[p.index]))
            chosen = kept if chosen is None else chosen & kept
    return chosen


def tags_in(workflow: Workflow) -> frozenset[str]:
    """Every tag some node of the workflow sets."""
    return frozenset(tag for p in workflow.placed for tag in p.node.tags)


def check_tags(used: Collection[str], given: Mapping[str, Collection[str]], hint: str = "") -> None:
    """Each tag given (keyed by what gave it: `--tag`, `tags=`) is a plain word some node sets:
    one no node has would leave out every node, or none, without a word."""
    for source, tags in given.items():
        for tag in tags:
            check_tag(tag, source=source)
            if tag not in used:
                known = f"tags in use: {', '.join(sorted(used))}" if used else "no node has a tag"
                raise LookupFailed(f"{source} {tag!r} matches no node; {known}{hint}")


def node_tags(workflow: Workflow) -> tuple[frozenset[str], ...]:
    """Every node's tags by preorder index: its own, and those of the groups above it."""
    found: list[frozenset[str]] = []
    for p in workflow.placed:  # preorder: a parent's are known before its children's
        own = frozenset(p.node.tags)
        inherited = frozenset() if p.parent is None else found[p.parent]
        found.append(inherited | own if own else inherited)
    return tuple(found)


def _chosen(workflow: Workflow, only: Callable[[Placed], bool]) -> frozenset[int]:
    placed = workflow.placed
    chosen: set[int] = set()
    for p in placed:  # preorder: a parent is decided before its children
        if only(p) or (p.parent is not None and p.parent in chosen):
            chosen.add(p.index)
    selected: set[int] = set()
    for index in chosen:
        i: int | None = index
        while i is not None and i not in selected:
            selected.add(i)
            i = placed[i].parent
    return frozenset(selected)


def subtree(workflow: Workflow, index: int) -> Sequence[int]:
    """The indices of a node and its descendants, in tree order. In preorder they follow it, as
    one block, until a run grows the tree: grown nodes come after all the others."""
    if workflow.grown:
        found, stack = [], [index]
        while stack:
            i = stack.pop()
            found.append(i)
            stack.extend(c.index for c in reversed(workflow.children_of[i]))
        return found
    placed = workflow.placed
    depth = len(placed[index].path)
    end = index + 1
    while end < len(placed) and len(placed[end].path) > depth:
        end += 1
    return range(index, end)


@dataclass(frozen=True, slots=True)
class Policy:
    """The rules one node's executable runs under."""

    timeout: float | None = None
    retries: int = 0
    retry_delay: float = 1.0
    retry_backoff: float = 2.0
    retry_on: tuple[int, ...] | None = None
    allow_failure: bool = False
    env: Mapping[str, str | Artifact] | None = None
    cwd: Path | None = None
    # The nodes (this one and its ancestors) whose max_parallel caps this node's attempts,
    # outermost first: the order every attempt takes their slots in, so none waits in a cycle.
    limits: tuple[int, ...] = ()
    budget: float | None = None  # a grouping node's timeout: seconds for its whole subtree
    priority: int = 0  # who takes a free slot first among the ready (higher first)


def policy_for(p: Placed, config: Config, inherited: Policy | None = None) -> Policy:
    """The node's own settings, else what its parent's policy (`inherited`) says, else the
    run's. The one place a node's rules are resolved.

    `timeout` is not inherited: on a node that executes it limits each attempt, on a grouping
    node it is a budget for the subtree (which bounds every node in it by what is left)."""
    node, up = p.node, inherited or Policy()
    cwd = up.cwd
    if node.cwd is not None:
        cwd = Path(node.cwd) if up.cwd is None else up.cwd / node.cwd  # an absolute cwd wins
    env = up.env
    if node.env:
        env = {**(up.env or {}), **node.env}
    return Policy(
        timeout=(node.effective_timeout or config.run.timeout) if node.executable is not None else None,
        retries=up.retries if node.retries is None else node.retries,
        retry_delay=up.retry_delay if node.retry_delay is None else node.retry_delay,
        retry_backoff=up.retry_backoff if node.retry_backoff is None else node.retry_backoff,
        retry_on=up.retry_on if node.retry_on is None else tuple(node.retry_on),
        allow_failure=up.allow_failure if node.allow_failure is None else node.allow_failure,
        env=env,
        cwd=cwd,
        limits=(*up.limits, p.index) if node.max_parallel is not None else up.limits,
        budget=node.timeout if node.executable is None else None,
        priority=up.priority if node.priority is None else node.priority,
    )


def attempt_env(
    policy: Policy, run_id: str, p: Placed, attempt: int, folder: Path
) -> dict[str, str | Artifact]:
    """The environment changes an attempt runs with: the node's own (artifacts among them until
    `with_paths`), then what says which attempt it is."""
    return {**(policy.env or {}), "WTFLOW_RUN_ID": run_id, "WTFLOW_NODE": p.path_str,
            "WTFLOW_ATTEMPT": str(attempt), "WTFLOW_ARTIFACTS": str(folder)}  # fmt: skip


def policies(workflow: Workflow, config: Config) -> tuple[Policy, ...]:
    """Every node's policy, by preorder index: one pass, each parent's resolved before its children."""
    resolved: list[Policy] = []
    for p in workflow.placed:
        resolved.append(policy_for(p, config, None if p.parent is None else resolved[p.parent]))
    return tuple(resolved)


def slots(config: Config, capacity: int | None) -> int:
    """How many attempts run at once: the executor's capacity (a Dask cluster's worker threads)
    when max_parallel was left at its default, never more than that capacity when it was set
    (an attempt queued inside a cluster would spend its time limit waiting), else max_parallel."""
    if capacity is None:
        return config.run.max_parallel
    if config.source("run.max_parallel") == "default":
        return max(1, capacity)
    return max(1, min(config.run.max_parallel, capacity))


def with_paths(
    executable: Executable, env: Mapping[str, str | Artifact]
) -> tuple[Executable, dict[str, str]]:
    """The executable and environment a node starts with: each artifact in a Command's argv or in
    `env` replaced by the path of its file (bound by then: its node has ended)."""
    values = {k: v if isinstance(v, str) else os.fspath(v) for k, v in env.items()}
    cmd = executable.cmd if isinstance(executable, Command) else ""
    if isinstance(executable, Command) and not all(isinstance(a, str) for a in cmd):
        executable = Command(executable.argv, timeout=executable.timeout)
    return executable, values


def attempt_status(result: ExecResult, missing: str | None = None) -> Status:
    """How an attempt ended, as the node's status; `missing` says a declared file was not made."""
    if result.timed_out:
        return Status.TIMED_OUT
    return Status.SUCCEEDED if result.code == 0 and missing is None else Status.FAILED


def should_retry(policy: Policy, status: Status, code: int | None, attempt: int) -> bool:
    """After attempt number `attempt` ended so: does another come?"""
    return (
        status in (Status.FAILED, Status.TIMED_OUT)
        and attempt <= policy.retries
        and (policy.retry_on is None or code in policy.retry_on)
    )


def retry_delay(policy: Policy, attempt: int, uniform: Callable[[float, float], float]) -> float:
    """Seconds to wait after attempt `attempt` failed: the delay grown by the backoff, times a
    jitter drawn by `uniform(low, high)` (e.g. `random.uniform`)."""
    return policy.retry_delay * policy.retry_backoff ** (attempt - 1) * uniform(*JITTER)


def group_status(outcome: Status, inherited: Iterable[Status], spent: bool) -> Status:
    """How a grouping node ends, from its children's outcome. `inherited`: the statuses of the
    children that leave allow_failure to their ancestors; one allowed to fail only because an
    ancestor is still shows its group failed (allowed), up to the node that allows it. `spent`:
    the group's own budget ran out (a child's time limit is that child's, not the group's)."""
    shown = outcome if outcome.is_failure else next((s for s in inherited if s.is_failure), outcome)
    if shown is Status.CANCELLED or spent:
        return shown
    return Status.FAILED if shown.is_failure else Status.SUCCEEDED


def verdict(outcome: Status, interrupted_by: int | None = None) -> tuple[Status, int]:
    """The run's status and exit code from its root's outcome; a run interrupted by a signal
    (Ctrl-C, SIGTERM) is cancelled with 128 + the signal, as a shell reports it."""
    if interrupted_by is not None:
        return Status.CANCELLED, 128 + interrupted_by
    if outcome is Status.CANCELLED:
        return Status.CANCELLED, EXIT_FAILED
    if outcome.is_failure:
        return Status.FAILED, EXIT_FAILED
    return Status.SUCCEEDED, EXIT_OK
