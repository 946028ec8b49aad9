"""`wtflow db upgrade`: bring the record's schema to this wtflow's version (a writer: it also
marks runs whose wtflow process is gone as crashed)."""

from __future__ import annotations

import argparse

from wtflow.config import Config, mask_url
from wtflow.errors import RecorderError

EPILOG = """\
examples:
  wtflow db upgrade                    the default database, .wtflow/wtflow.db
  WTFLOW_DB_URL=postgresql+psycopg://me@host/ci wtflow db upgrade
                                       a shared database, before readers of the new wtflow use it"""

UPGRADE_EPILOG = """\
examples:
  wtflow db upgrade
  wtflow --db-url sqlite:///ci/wtflow.db db upgrade"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = subparsers.add_parser(
        "db", help="the database itself", description="Look after the database of the record.",
        epilog=EPILOG, formatter_class=fmt,
    )  # fmt: skip
    commands = parser.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    upgrade = commands.add_parser(
        "upgrade", help="bring the schema up to this wtflow's version", formatter_class=fmt,
        description="Bring the schema up to this wtflow's version (a new database is created), "
        "and mark runs whose wtflow process is gone as crashed.", epilog=UPGRADE_EPILOG,
    )  # fmt: skip
    upgrade.set_defaults(handler=cmd_db_upgrade)


def cmd_db_upgrade(args: argparse.Namespace, config: Config) -> int:
    from wtflow.artifacts import ensure_private_dir
    from wtflow.db import schema
    from wtflow.db.read import record_url

    url = record_url(config)
    if config.db.url is None:  # the default database lives in wtflow's own state folder
        state = config.storage.resolved_state_dir()
        try:
            ensure_private_dir(state)
        except OSError as e:
            raise RecorderError(
                f"state folder {str(state)!r} cannot be created: {e.strerror or e}; "
                "set WTFLOW_STATE_DIR (or --state-dir) to a folder you may write"
            ) from None
    schema.connect(url).dispose()
    print(f"database {mask_url(url)} is at schema revision {schema.HEAD} (the newest)")
    return 0
