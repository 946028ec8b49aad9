"""`wtflow diff RUN1 RUN2`: the nodes whose status, exit code, digest or duration changed
between two recorded runs (read side only)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wtflow.commands.record import RUN_HELP, columns, print_json, reading
from wtflow.config import Config, parse_seconds

if TYPE_CHECKING:
    from wtflow.db.read import NodeInfo

EPILOG = """\
examples:
  wtflow diff 3f2a last                what changed since run 3f2a
  wtflow diff 3f2a 9b1c --threshold 5  durations count as changed beyond 5 seconds (default 1)
  wtflow diff 3f2a last --json         for scripts"""
THRESHOLD = 1.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "diff", help="the nodes that changed between two runs",
        description="The nodes whose status, exit code, digest or duration (beyond --threshold) "
        "differ between two recorded runs.", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("run1", help=RUN_HELP)
    parser.add_argument("run2", help=RUN_HELP)
    parser.add_argument(
        "--threshold", default=str(THRESHOLD), metavar="SECONDS",
        help=f"a duration changed when it differs by more than this (default {THRESHOLD:g})",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="a JSON list, for scripts")
    parser.set_defaults(handler=cmd_diff)


@dataclass(frozen=True, slots=True)
class Side:
    status: str | None
    exit_code: int | None
    digest: str | None
    duration: float | None


def _side(node: NodeInfo | None) -> Side:
    if node is None:
        return Side(None, None, None, None)
    last = node.attempts[-1] if node.attempts else None
    took = None
    if node.started_at is not None and node.ended_at is not None:
        took = (node.ended_at - node.started_at).total_seconds()
    return Side(node.status, node.exit_code, None if last is None else last.digest, took)


def changes(old: Side, new: Side, threshold: float) -> list[str]:
    """Which of status, exit_code, digest, duration changed."""
    found = [name for name in ("status", "exit_code", "digest") if getattr(old, name) != getattr(new, name)]
    if old.duration is not None and new.duration is not None:
        if abs(new.duration - old.duration) > threshold:
            found.append("duration")
    elif old.duration != new.duration:
        found.append("duration")
    return found


def cmd_diff(args: argparse.Namespace, config: Config) -> int:
    threshold = parse_seconds(args.threshold, source="--threshold")
    with reading(config) as reader:
        runs = [reader.find_run(ref) for ref in (args.run1, args.run2)]
        trees = [{n.path: n for n in reader.run_tree(run) if not n.is_group} for run in runs]
    rows: list[dict[str, Any]] = []
    for path in [*trees[0], *(p for p in trees[1] if p not in trees[0])]:
        old, new = _side(trees[0].get(path)), _side(trees[1].get(path))
        changed = changes(old, new, threshold)
        if changed:
            rows.append({"path": path, "changed": changed, "before": _plain(old), "after": _plain(new)})
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print(f"no node changed between {runs[0].id[:8]} and {runs[1].id[:8]}")
        return 0
    table = [("NODE", "CHANGED", runs[0].id[:8], runs[1].id[:8])]
    for row in rows:
        table.append((row["path"], ", ".join(row["changed"]), _cell(row["before"]), _cell(row["after"])))
    print("\n".join(columns(table)))
    return 0


def _plain(side: Side) -> dict[str, Any]:
    took = None if side.duration is None else round(side.duration, 3)
    return {"status": side.status, "exit_code": side.exit_code, "digest": side.digest, "duration": took}


def _cell(side: dict[str, Any]) -> str:
    if side["status"] is None:
        return "(absent)"
    code = "" if side["exit_code"] is None else f" exit {side['exit_code']}"
    took = "" if side["duration"] is None else f" {side['duration']:.1f}s"
    return f"{side['status']}{code}{took}"
