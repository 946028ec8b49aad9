"""`wtflow db upgrade`: bring the record's schema to this wtflow's version (a writer: it also
settles runs whose wtflow process is gone, from their journals). `wtflow db rebuild`: add to
the record every run whose journal is under the artifacts folder and which it does not hold."""

from __future__ import annotations

import argparse
import sys

from wtflow.config import Config, mask_url
from wtflow.errors import RecorderError

EPILOG = """\
examples:
  wtflow db upgrade                    the default database, .wtflow/wtflow.db
  wtflow db rebuild                    a lost or corrupt database: the runs again, from their journals
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
    rebuild = commands.add_parser(
        "rebuild", help="record again the runs whose journals are under the artifacts folder",
        formatter_class=fmt, epilog=REBUILD_EPILOG,
        description="Replay each run's journal (<run folder>/journal.jsonl under the artifacts folder) "
        "into the database, for every run it does not hold: a deleted or corrupt database loses no history.",
    )  # fmt: skip
    rebuild.set_defaults(handler=cmd_db_rebuild)


REBUILD_EPILOG = """\
examples:
  rm .wtflow/wtflow.db && wtflow db rebuild
  WTFLOW_ARTIFACTS_DIR=ci/artifacts wtflow --db-url sqlite:///new.db db rebuild"""


def _writer_url(config: Config) -> str:
    from wtflow.artifacts import ensure_private_dir
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
    return url


def cmd_db_upgrade(args: argparse.Namespace, config: Config) -> int:
    from wtflow.db import schema

    url = _writer_url(config)
    schema.connect(url).dispose()
    print(f"database {mask_url(url)} is at schema revision {schema.HEAD} (the newest)")
    return 0


def cmd_db_rebuild(args: argparse.Namespace, config: Config) -> int:
    from wtflow.db import journals, schema

    url = _writer_url(config)
    folder = config.storage.resolved_artifacts_dir()
    engine = schema.connect(url)
    judge = schema.DeathRule.now()
    try:
        with engine.begin() as conn:
            done = journals.rebuild(conn, folder, is_dead=lambda host, pid: judge.is_dead(host, pid, None))
    finally:
        engine.dispose()
    for path in done.unreadable:
        sys.stderr.write(
            f"wtflow: warning: journal {str(path)!r} has no beginning; its run is not recorded\n"
        )
    print(
        f"database {mask_url(url)}: {len(done.added)} runs recorded from the journals under "
        f"{str(folder)!r}, {done.kept} held already"
    )
    return 0
