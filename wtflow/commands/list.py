"""`wtflow list`: the workflows the wtfile defines and their node counts."""

from __future__ import annotations

import argparse
import inspect
import sys

from wtflow import discover
from wtflow.commands import wtfiles
from wtflow.commands.exit_codes import EXIT_OK, EXIT_USAGE
from wtflow.config import Config
from wtflow.discover import DEFAULT_WTFILE, Registered
from wtflow.errors import UsageError
from wtflow.model import Workflow
from wtflow.params import Param


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `list`; it sets `handler(args, config) -> int` as its default."""
    lister = commands.add_parser(
        "list", help="list workflows and their node counts",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="List the workflows the wtfile defines.",
        epilog="examples:\n  wtflow list\n  wtflow list --tags\n  wtflow list ci/ --json\n  wtflow -f ci/wtfile.py list",
    )  # fmt: skip
    lister.add_argument("path", nargs="?", metavar="PATH", help="a wtfile or a folder (same as -f PATH)")
    lister.add_argument("--json", action="store_true", help="machine-readable output")
    lister.add_argument(
        "--tags", action="store_true", help="each tag and the nodes that set it (for run --tag/--skip-tag)"
    )
    lister.set_defaults(handler=cmd_list)


def tagged(wf: Workflow) -> dict[str, list[str]]:
    """Each tag, sorted, with the paths of the nodes that set it (their subtrees have it too)."""
    found: dict[str, list[str]] = {}
    for p in wf.placed:
        for tag in p.node.tags:
            found.setdefault(tag, []).append(p.path_str)
    return {tag: found[tag] for tag in sorted(found)}


def cmd_list(args: argparse.Namespace, config: Config) -> int:
    args.file, _ = discover.positional_path(
        [args.path] if args.path else [], args.file, default=DEFAULT_WTFILE, names=False
    )
    found = wtfiles.found(args, keep_going=True)
    # One broken wtfile or workflow does not hide the others: list them, then report it (exit 2).
    broken: list[UsageError] = list(found.broken)
    workflows: list[tuple[Registered, Workflow | None]] = []
    for reg in found.workflows.values():
        if _required(reg):  # its tree is only known once they are given
            workflows.append((reg, None))
            continue
        try:
            workflows.append((reg, wtfiles.build(reg)))
        except UsageError as e:
            broken.append(e)
    if args.json:
        rows = [{"name": reg.name if wf is None else wf.name, "nodes": None if wf is None else len(wf.placed),
                 "source": reg.source, "params": [p.describe() for p in reg.params],
                 **({"tags": {} if wf is None else tagged(wf)} if args.tags else {})}
                for reg, wf in workflows]  # fmt: skip
        import json  # for --json only

        print(json.dumps(rows, indent=2))
    elif workflows:
        print(f"Found {len(workflows)} workflow(s):")
        for reg, wf in workflows:
            taken = f"  params: {', '.join(p.describe() for p in reg.params)}" if reg.params else ""
            if wf is None:
                needed = " ".join(f"-p {p.name}=VALUE" for p in _required(reg))
                print(f"- {reg.name} (nodes known with {needed}){taken}")
                continue
            count = len(wf.placed)
            print(f"- {wf.name} ({count} node{'' if count == 1 else 's'}){taken}")
            if args.tags:
                for tag, paths in tagged(wf).items():
                    print(f"    {tag}: {', '.join(paths)}")
    elif not broken:
        print("No workflows found.")
    for error in broken:
        print(f"wtflow: error: {error}", file=sys.stderr)
    return EXIT_USAGE if broken else EXIT_OK


def _required(reg: Registered) -> list[Param]:
    return [p for p in reg.params if p.default is inspect.Parameter.empty]
