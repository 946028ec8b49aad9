"""`wtflow config [--json]`: every effective setting, its value and where it came from."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from wtflow.config import SETTINGS, Config, Setting, mask_url

_EPILOG = """\
examples:
  wtflow config                        each setting, its value, and where that came from
  wtflow -c ci.ini config --json       the same as JSON, for scripts
  WTFLOW_MAX_PARALLEL=4 wtflow config  see which source wins

a source is: default, FILE:LINE of the INI file, a WTFLOW_* variable, or flag.
database passwords are shown as ***."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `config`; it sets `handler(args, config) -> int` as its default."""
    parser = subparsers.add_parser(
        "config", help="every setting, its value and where it came from",
        description="List every effective setting with its value and its source.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="one JSON array, for scripts")
    parser.set_defaults(handler=cmd_config)


def rows(config: Config) -> list[dict[str, Any]]:
    """One row a setting: `section.key`, the value in effect (masked), its source, and where
    else it can be set."""
    return [
        {
            "setting": s.name,
            "value": _effective(config, s),
            "source": config.source(s),
            "env": s.env,
            "ini": f"[{s.section}] {s.key}",
        }
        for s in SETTINGS
    ]


def _effective(config: Config, setting: Setting) -> Any:
    # What wtflow will use, defaults resolved: "unset" says nothing about where files go.
    state_dir = config.storage.resolved_state_dir()
    if setting.name == "database.url":
        url = config.db.resolved_url(state_dir)
        return None if url is None else mask_url(url)
    if setting.name == "storage.state_dir":
        return str(state_dir)
    if setting.name == "storage.artifacts_dir":
        return str(config.storage.resolved_artifacts_dir())
    value = config.value(setting)
    if setting.secret and isinstance(value, str):
        value = mask_url(value)
    return str(value) if isinstance(value, Path) else value


def _text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):  # run.flags
        return ", ".join(value) or "none"
    return str(value)


def cmd_config(args: argparse.Namespace, config: Config) -> int:
    table = rows(config)
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    header = ("SETTING", "VALUE", "SOURCE")
    lines = [(r["setting"], _text(r["value"]), r["source"]) for r in table]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(2)]
    for setting, value, source in [header, *lines]:
        print(f"{setting:<{widths[0]}}  {value:<{widths[1]}}  {source}".rstrip())
    return 0
