"""`wtflow logs`: a node's captured output, as the terminal showed it, or followed as it grows."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from wtflow.commands.record import RUN_HELP, Painter, positive, print_json, reading
from wtflow.config import Config
from wtflow.errors import LookupFailed, UsageError
from wtflow.status import Status

if TYPE_CHECKING:
    from wtflow.db.read import AttemptInfo, NodeInfo, Reader, RunInfo

FOLLOW_POLL = 0.2
BOTH = ("stdout", "stderr")

EPILOG = """\
examples:
  wtflow logs last tests               stdout and stderr of node tests, interleaved as they arrived
  wtflow logs last ci/checks/tests     the same node by its path
  wtflow logs f9ac tests --stderr      one stream only (or --stdout); --attempt 1 for an earlier try
  wtflow logs last                     every node's output, each under its path
  wtflow logs last --failed            every failed node's last lines, with its log files
  wtflow logs last tests -w ci -f      follow node tests of the newest run of ci while it runs"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "logs", help="a node's captured output", description="A node's captured output, from the record.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("run", help=RUN_HELP)
    parser.add_argument("node", nargs="?", help="node path (root/a/b), path below the root, or unique name")
    parser.add_argument("-w", "--workflow", help="with last: the newest run of this workflow")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--stdout", dest="streams", action="store_const", const=("stdout",), help="stdout only"
    )
    which.add_argument(
        "--stderr", dest="streams", action="store_const", const=("stderr",), help="stderr only"
    )
    which.add_argument("--both", dest="streams", action="store_const", const=BOTH,
                       help="stdout and stderr interleaved as they arrived (the default)")  # fmt: skip
    parser.add_argument("--attempt", type=positive, help="attempt number (default: the last)")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing while the node runs")
    parser.add_argument("--failed", action="store_true", help="every failed node's last lines and log files")
    parser.add_argument("--json", action="store_true", help="where the attempt's output is, as JSON")
    parser.set_defaults(handler=cmd_logs, streams=BOTH, late=("node",))


def cmd_logs(args: argparse.Namespace, config: Config) -> int:
    from wtflow.commands import output
    from wtflow.commands.show import failure_report
    from wtflow.db.read import below
    from wtflow.db.shapes import logs_shape

    out = sys.stdout.buffer
    with reading(config) as reader:
        run = reader.find_run(args.run, workflow=args.workflow)
        tree = reader.run_tree(run)
        if args.failed:
            if args.node is not None or args.follow:
                raise UsageError("--failed shows every failed node; give no node and no --follow with it")
            print("\n".join(failure_report(run, tree, args.streams, Painter.for_stream(sys.stdout, args))))
            return 0
        runnable = [n for n in tree if not n.is_group]
        if args.node is None and len(runnable) != 1:
            if args.follow:
                raise UsageError("--follow needs a node; name one after the run id")
            for node in runnable:  # every node's output, each under a header, as `tail` does for files
                if node.attempts:
                    parts = output.pieces(node.attempts[-1], args.streams)
                    if output.has_bytes(parts):
                        out.write(f"==> {node.path} <==\n".encode())
                        output.copy(parts, out)
            return 0
        node = _node(reader, run, tree, args) if args.node is not None else runnable[0]
        if node.is_group:
            children = ", ".join(repr(n.path) for n in below(tree, node)[:8])
            raise LookupFailed(
                f"node {node.path!r} is a group: it runs nothing itself and has no output; "
                f"name one of its nodes: {children or '(none)'}"
            )
        attempt = _attempt(node, args.attempt)
        if attempt is None:
            if args.attempt is not None:
                raise LookupFailed(
                    f"node {node.path!r} has no attempt {args.attempt}; it ran {len(node.attempts)}"
                )
            if not args.follow:
                raise LookupFailed(f"node {node.path!r} did not run ({node.status}); it has no output")
        if args.follow:
            return _follow(reader, run, node, args.attempt, args.streams, out)
        assert attempt is not None
        if args.json:
            print_json(logs_shape(run, node, attempt))
            return 0
        output.copy(output.pieces(attempt, args.streams), out)
    return 0


def _node(reader: Reader, run: RunInfo, tree: Sequence[NodeInfo], args: argparse.Namespace) -> NodeInfo:
    """The node named; when `last` of every workflow has none, the error says which run has it."""
    from wtflow.db.read import find_node, means_newest

    try:
        return find_node(tree, args.node)
    except LookupFailed as e:
        if args.workflow is not None or not means_newest(args.run):
            raise
        holder = reader.newest_with_node(args.node)
        if holder is None or holder.id == run.id:
            raise
        raise LookupFailed(
            f"{e}; `last` is the newest run of any workflow ({run.id[:8]}, {run.workflow!r}): "
            f"the newest with that node is {holder.id[:8]}, of {holder.workflow!r} "
            f"(wtflow logs last -w {shlex.quote(holder.workflow)} {shlex.quote(args.node)})"
        ) from None


def _attempt(node: NodeInfo, n: int | None) -> AttemptInfo | None:
    if n is None:
        return node.attempts[-1] if node.attempts else None
    return next((a for a in node.attempts if a.n == n), None)


def _follow(
    reader: Reader, run: RunInfo, node: NodeInfo, n: int | None, streams: Sequence[str], out: IO[bytes]
) -> int:
    """Print the chosen streams as they grow, each stream's new bytes as they come, from the
    node's first attempt (or attempt `n`) on, moving to each retry's attempt once the one
    before has ended, until the node has ended (or its run has crashed)."""
    from wtflow.commands.output import read_from

    current = n or 1
    offsets = dict.fromkeys(streams, 0)
    if current > 1:
        out.write(f"==> attempt {current} <==\n".encode())
    try:
        while True:
            info = reader.node(reader.run(run.id), node.index)
            attempt = _attempt(info, current)
            ended = attempt is not None and Status(attempt.status).is_final
            later = n is None and ended and _attempt(info, current + 1) is not None
            if attempt is not None:
                for stream in streams:
                    if stream in attempt.outputs:
                        offsets[stream] += read_from(Path(attempt.outputs[stream].path), offsets[stream], out)
            if later:
                current, offsets = current + 1, dict.fromkeys(streams, 0)
                out.write(f"==> attempt {current} <==\n".encode())
                continue
            final = Status(info.status).is_final
            if (ended and (n is not None or final)) or (attempt is None and final):
                if attempt is None:
                    print(f"wtflow: the node ended {info.status} without running", file=sys.stderr)
                return 0
            time.sleep(FOLLOW_POLL)
    except KeyboardInterrupt:
        return 130
