"""`wtflow report [RUN] -o FILE`: the self-contained HTML report of a recorded run."""

from __future__ import annotations

import argparse
from pathlib import Path

from wtflow.config import Config
from wtflow.errors import UsageError

_EPILOG = """\
examples:
  wtflow report                        the newest run, to ./wtflow-<run id>.html
  wtflow report f9ac -o ci-run.html    the run whose id starts f9ac
  WTFLOW_REPORT=run.html wtflow run ci written by the run itself when it ends (or --report)"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `wtflow report`."""
    parser = subparsers.add_parser(
        "report",
        help="write a run's HTML report: tree, timeline, output tails (one file, no network)",
        description="Write the HTML report of a recorded run: one file that opens anywhere.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", nargs="?", default="last", help="run id, unique prefix, or last (default)")
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="where to write it (default: ./wtflow-<run id[:8]>.html)"
    )
    parser.set_defaults(handler=cmd_report)


def cmd_report(args: argparse.Namespace, config: Config) -> int:
    from wtflow.reports.html import write_report
    from wtflow.views.record import load_run

    run = load_run(config, args.run)
    path = Path(args.output) if args.output else Path(f"wtflow-{run['id'][:8]}.html")
    if path.is_dir():
        raise UsageError(f"-o {str(path)!r} is a folder; give a file name, e.g. -o {path / 'run.html'}")
    try:
        write_report(run, path)
    except OSError as e:
        raise UsageError(f"report file {str(path)!r} cannot be written: {e.strerror or e}") from None
    print(f"wrote the report of run {run['id'][:8]} ({run['workflow']}, {run['status']}) to {path}")
    return 0
