"""`wtflow runs`: the recent runs, newest first, with their nodes counted by status."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from wtflow.commands.record import (
    Painter,
    columns,
    count_text,
    duration,
    local_time,
    positive,
    print_json,
    reading,
)
from wtflow.config import Config
from wtflow.status import Status

if TYPE_CHECKING:
    from wtflow.db.read import RunInfo

EPILOG = """\
examples:
  wtflow runs                          the 20 newest runs
  wtflow runs -w ci -n 5               the 5 newest runs of workflow ci
  wtflow runs -s failed                only runs that failed (crashed: their wtflow was killed)
  wtflow runs --json | jq '.[0].id'    for scripts: one JSON array"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "runs", help="recent runs, newest first", description="The recorded runs, newest first.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("-w", "--workflow", help="only runs of this workflow")
    parser.add_argument("-s", "--status", choices=[s.value for s in Status], help="only runs that ended so")
    parser.add_argument("-n", "--limit", type=positive, default=20, help="how many runs (default 20)")
    parser.add_argument("--json", action="store_true", help="one JSON array, for scripts")
    parser.set_defaults(handler=cmd_runs)


def cmd_runs(args: argparse.Namespace, config: Config) -> int:
    from wtflow.db.read import NothingRecorded
    from wtflow.db.shapes import runs_shape

    try:
        with reading(config) as reader:
            summaries = reader.recent_runs(workflow=args.workflow, status=args.status, limit=args.limit)
    except NothingRecorded:  # nothing has run here yet: an empty list
        print("[]" if args.json else "no runs recorded yet")
        return 0
    if args.json:
        print_json(runs_shape(summaries))
        return 0
    if not summaries:
        print("no runs recorded" + (" matching the filters" if args.workflow or args.status else ""))
        return 0
    paint = Painter.for_stream(sys.stdout, args)
    rows = [("ID", "WORKFLOW", "STARTED", "DURATION", "STATUS", "NODES")]
    for s in summaries:
        rows.append((s.run.id[:8], s.run.workflow, local_time(s.run.started_at),
                     duration(s.run.started_at, s.run.ended_at, s.run.status), s.run.status,
                     count_text(dict(s.counts)) + _gone(s.run)))  # fmt: skip
    for i, row in enumerate(columns(rows)):
        print(paint.status(row, summaries[i - 1].run.status) if i else paint.bold(row))
    return 0


def _gone(run: RunInfo) -> str:
    from wtflow.db.read import output_state

    return "; output gone" if output_state(run) == "gone" else ""
