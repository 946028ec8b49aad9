"""`wtflow show`: one run's tree (status, exit code, attempts, time), or its failed nodes' tails."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from wtflow.commands.record import (
    RUN_HELP,
    Painter,
    columns,
    duration,
    local_time,
    print_json,
    reading,
)
from wtflow.config import Config
from wtflow.status import exit_text

if TYPE_CHECKING:
    from wtflow.db.read import NodeInfo, RunInfo

EPILOG = """\
examples:
  wtflow show                          the newest run (the same as: wtflow show last)
  wtflow show f9ac                     a run by a unique prefix of its id
  wtflow show last -w ci               the newest run of workflow ci
  wtflow show last --failed            every failed node's last lines, with its log files
  wtflow show last --json              for scripts: the run, its nodes, attempts and output files"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "show", help="the tree of one run: status, exit code, attempts, time",
        description="One recorded run: its settings, where its output is, and its tree.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("run", nargs="?", default="last", help=RUN_HELP + " (default)")
    parser.add_argument("-w", "--workflow", help="with last: the newest run of this workflow")
    parser.add_argument("--failed", action="store_true", help="every failed node's last lines and log files")
    parser.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    parser.set_defaults(handler=cmd_show)


def cmd_show(args: argparse.Namespace, config: Config) -> int:
    from wtflow.db.shapes import show_shape

    with reading(config) as reader:
        run = reader.find_run(args.run, workflow=args.workflow)
        tree = reader.run_tree(run)
    if args.json:
        print_json(show_shape(run, tree))
        return 0
    paint = Painter.for_stream(sys.stdout, args)
    ended = f" (exit {run.exit_code})" if run.exit_code is not None else ""
    print(paint.status(f"run {run.id}  {run.workflow}  {run.status}{ended}", run.status))
    print(f"started {local_time(run.started_at)}  took {duration(run.started_at, run.ended_at, run.status)}  "
          f"on {run.user}@{run.host}  wtflow {run.wtflow_version}")  # fmt: skip
    print(f"output  {run.run_dir}{_output_note(run)}")
    if run.params:
        print("params  " + " ".join(f"{k}={v}" for k, v in run.params.items()))
    for line in provenance_lines(run.provenance or {}):
        print(line)
    print()
    if args.failed:
        print("\n".join(failure_report(run, tree, ("stdout", "stderr"), paint)))
        return 0
    rows = []
    for node in tree:
        extra = f"attempts {len(node.attempts)}" if len(node.attempts) > 1 else node.reason or ""
        elsewhere = sorted({a.host for a in node.attempts if a.host and a.host != run.host})
        extra += f"  on {', '.join(elsewhere)}" if elsewhere else ""  # a Dask worker, say
        # A same-named sibling is found by its folder name (`twin-2`): show it beside the name.
        name = node.name if node.folder == node.name else f"{node.name} [{node.folder}]"
        rows.append(("  " * node.depth + name, node.shown_status, exit_text(node.exit_code),
                     duration(node.started_at, node.ended_at, node.status) if node.started_at else "", extra))  # fmt: skip
    indent = {node.index: "  " * (node.depth + 2) for node in tree}
    for node, line in zip(tree, columns(rows), strict=True):
        print(paint.node(line.rstrip(), node))
        for kept in kept_lines(node):
            print(indent[node.index] + kept)
    return 0


def _output_note(run: RunInfo) -> str:
    from wtflow.db.read import output_state

    state = output_state(run)
    if state == "gone":
        return "  (gone: removed by hand; `wtflow gc` clears its record)"
    return f"  (not on this machine: recorded on {run.host})" if state == "elsewhere" else ""


def provenance_lines(origin: Mapping[str, Any]) -> list[str]:
    """Where the run came from: its command line, wtfile and git commit."""
    lines = []
    if "command" in origin:
        lines.append(f"command {shlex.join(origin['command'])}")
    if "wtfile" in origin:
        lines.append(f"wtfile  {origin['wtfile']}  sha256 {origin.get('wtfile_sha256')}")
    git = origin.get("git")
    if git:
        dirty = " (dirty)" if git.get("dirty") else ""
        lines.append(f"git     {git.get('commit')} on {git.get('branch')}{dirty}")
    return lines


RESULT_WIDTH = 100  # the text view abridges a result to this many characters; --json has it whole


def kept_lines(node: NodeInfo) -> list[str]:
    """The node's result (abridged) and its declared files, with size and digest."""
    from wtflow.db.shapes import NoResult, result_value

    lines = []
    try:
        text = json.dumps(result_value(node), ensure_ascii=False)
    except NoResult:
        pass
    else:
        lines.append(f"result: {text if len(text) <= RESULT_WIDTH else text[: RESULT_WIDTH - 3] + '...'}")
    last = node.attempts[-1].outputs.values() if node.attempts else ()
    for o in sorted((o for o in last if o.kind == "file"), key=lambda o: o.name):
        lines.append(f"{o.artifact}: {o.path}  {o.size} bytes  sha256 {o.sha256}")
    return lines


def failure_report(
    run: RunInfo, tree: Sequence[NodeInfo], streams: Sequence[str], paint: Painter
) -> list[str]:
    """Each failed node (allowed failures too, marked so): what ended it, its log files, and
    the last lines of its last attempt's output of `streams` as they arrived."""
    from wtflow.commands import output

    failed = [n for n in tree if not n.is_group and n.failed]
    if not failed:
        return [f"no node failed in run {run.id[:8]} ({run.status})"]
    lines: list[str] = []
    for node in failed:
        attempt = node.attempts[-1] if node.attempts else None
        why = exit_text(node.exit_code) if node.exit_code is not None else node.status
        tries = f", {len(node.attempts)} attempts" if len(node.attempts) > 1 else ""
        lines.append(paint.node(f"{node.shown_status.upper()} {node.path} ({why}{tries})", node))
        if attempt is None:
            lines.append("    (it never started: no output)")
            continue
        for stream in streams:
            if stream in attempt.outputs:
                lines.append(f"  {stream}: {attempt.outputs[stream].path}")
        lines.extend(f"    {line}" for line in output.tail(output.pieces(attempt, streams)))
    return lines
