"""Times of a run as the views show them, and its critical path (pure: no I/O, no clock).

The critical path follows the tree, as the engine walks it: a node runs its own executable
first, then its children; one after another they add up, all at once (`parallel`) the
longest of them counts. Its length is what the run would take with unlimited processes.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

Record = Mapping[str, Any]  # a run or a node as `wtflow show --json` gives it


def parse_time(value: object) -> datetime | None:
    """A recorded time (ISO text or datetime) as a datetime; None stays None."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def seconds_text(seconds: float | None, *, running: bool = False) -> str:
    """`1.2s`, `3m04s`, `2h05m`; a `+` while it still runs; empty when unknown."""
    if seconds is None:
        return ""
    if seconds < 60:
        text = f"{seconds:.1f}s"
    elif seconds < 3600:
        text = f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    else:
        text = f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"
    return text + ("+" if running else "")


def time_text(value: object) -> str:
    moment = parse_time(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment is not None else ""


def interval(item: Record, now: datetime) -> tuple[datetime, datetime] | None:
    """When a node or attempt ran: (start, end), the end being `now` while it runs."""
    start = parse_time(item.get("started_at"))
    if start is None:
        return None
    end = parse_time(item.get("ended_at")) or now
    return start, max(start, end)


def elapsed(item: Record, now: datetime) -> float | None:
    """Seconds a run, node or attempt took (so far, while it runs)."""
    span = interval(item, now)
    return (span[1] - span[0]).total_seconds() if span else None


def parent_path(path: str) -> str:
    return path.rpartition("/")[0]


def children_of(nodes: Sequence[Record]) -> dict[str, list[int]]:
    """Indexes of each node's children, by the parent's path (the root's parent is '')."""
    children: dict[str, list[int]] = {}
    for i, node in enumerate(nodes):
        children.setdefault(parent_path(node["path"]), []).append(i)
    return children


def own_interval(node: Record, now: datetime) -> tuple[datetime, datetime] | None:
    """From the start of a node's first attempt to the end of its last (retry delays included)."""
    spans = [s for s in (interval(a, now) for a in node.get("attempts") or ()) if s is not None]
    if not spans:
        return None
    return min(s[0] for s in spans), max(s[1] for s in spans)


def subtree_intervals(nodes: Sequence[Record], now: datetime) -> list[tuple[datetime, datetime] | None]:
    """When each node ran, its descendants included: a grouping node has no attempts of its
    own, and a node's children run after its executable has ended."""
    children = children_of(nodes)
    spans: list[tuple[datetime, datetime] | None] = [None] * len(nodes)
    for i in reversed(range(len(nodes))):
        found = [own_interval(nodes[i], now) or interval(nodes[i], now)]
        found += [spans[k] for k in children.get(nodes[i]["path"], [])]
        known = [s for s in found if s is not None]
        if known:
            spans[i] = min(s[0] for s in known), max(s[1] for s in known)
    return spans


@dataclass(frozen=True)
class CriticalPath:
    """The nodes whose own executables lie on the critical path, and its length in seconds."""

    paths: frozenset[str]
    seconds: float


def critical_path(nodes: Sequence[Record], now: datetime) -> CriticalPath:
    """The critical path of a run's nodes (tree order, as recorded)."""
    children = children_of(nodes)
    own: list[float] = []
    for node in nodes:
        span = own_interval(node, now)
        own.append((span[1] - span[0]).total_seconds() if span else 0.0)
    length = [0.0] * len(nodes)
    chosen: dict[int, list[int]] = {}
    # Tree order lists a parent before its children, so walking it backwards meets the
    # children first; no recursion, however deep the tree.
    for i in reversed(range(len(nodes))):
        kids = children.get(nodes[i]["path"], [])
        if not kids:
            length[i] = own[i]
            continue
        parallel = nodes[i].get("parallel")
        if parallel is None:  # a record that does not say: children that overlapped ran at once
            parallel = _overlapped([own_interval(nodes[k], now) for k in kids])
        if parallel:
            longest = max(kids, key=lambda k: length[k])
            chosen[i], length[i] = [longest], own[i] + length[longest]
        else:
            chosen[i], length[i] = kids, own[i] + sum(length[k] for k in kids)
    roots = children.get("", [])
    on_path: set[str] = set()
    stack = roots[:1]
    while stack:
        i = stack.pop()
        if own[i] > 0:
            on_path.add(nodes[i]["path"])
        stack.extend(chosen.get(i, []))
    return CriticalPath(frozenset(on_path), length[roots[0]] if roots else 0.0)


def _overlapped(spans: Sequence[tuple[datetime, datetime] | None]) -> bool:
    ordered = sorted(s for s in spans if s is not None)
    return any(later[0] < earlier[1] for earlier, later in itertools.pairwise(ordered))
