"""`wtflow list`: the workflows the wtfile defines and their node counts."""

from __future__ import annotations

import argparse
import json

from wtflow.commands import wtfiles
from wtflow.commands.exit_codes import EXIT_OK
from wtflow.config import Config


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `list`; it sets `handler(args, config) -> int` as its default."""
    lister = commands.add_parser(
        "list", help="list workflows and their node counts",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="List the workflows the wtfile defines.",
        epilog="examples:\n  wtflow list\n  wtflow -f ci/ list --json",
    )  # fmt: skip
    lister.add_argument("--json", action="store_true", help="machine-readable output")
    lister.set_defaults(handler=cmd_list)


def cmd_list(args: argparse.Namespace, config: Config) -> int:
    workflows = [(reg, wtfiles.build(reg)) for reg in wtfiles.found(args).values()]
    if args.json:
        rows = [{"name": r.name, "nodes": len(wf.placed), "source": r.source} for r, wf in workflows]
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not workflows:
        print("No workflows found.")
        return EXIT_OK
    print(f"Found {len(workflows)} workflow(s):")
    for reg, wf in workflows:
        count = len(wf.placed)
        print(f"- {reg.name} ({count} node{'' if count == 1 else 's'})")
    return EXIT_OK
