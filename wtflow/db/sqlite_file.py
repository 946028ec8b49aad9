"""The SQLite file of a record, without SQLAlchemy: which URLs name a local file, and creating
that file owner-only, and whether a file that is there is a record this wtflow can write. The
recorder checks this much before a run starts (the stdlib's sqlite3 takes a few milliseconds)
and leaves the rest (importing SQLAlchemy, connecting, upgrading the schema) to its writer thread."""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

from wtflow.db.revisions import KNOWN
from wtflow.errors import RecorderError

BUSY_MS = 30_000  # how long a writer waits for another one's transaction

# sqlite:///relative.db, sqlite:////absolute.db: what the default URL and most users' look like.
# Anything else (a query string, a URI filename, another driver) goes through SQLAlchemy first.
_LOCAL_FILE = re.compile(r"sqlite(?:\+pysqlite)?:///(?P<path>[^?#]+)")


def local_file(url: str) -> Path | None:
    """The file a plain `sqlite:///PATH` URL names; None for any other URL (and `:memory:`)."""
    match = _LOCAL_FILE.fullmatch(url)
    if match is None or match["path"] == ":memory:":
        return None
    return Path(match["path"])


def create_private(url: str, path: Path) -> None:
    """Create the SQLite file owner-only (the record holds commands and settings; SQLite gives
    the -wal and -shm files the database file's mode), or say in one line why it cannot be."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    except FileNotFoundError:
        if _is_dir(path.parent):  # /proc: a folder that takes no new files
            raise RecorderError(
                f"database {url} cannot be opened for writing: {str(path.parent)!r} takes no new files; "
                "point WTFLOW_DB_URL at a file you may write, or set it empty to run without recording"
            ) from None
        raise RecorderError(
            f"database {url} cannot be created: folder {str(path.parent)!r} does not exist; "
            "create it or point WTFLOW_DB_URL elsewhere"
        ) from None
    except OSError as e:
        # A folder or file of another user, a read-only mount, /proc or /sys: none is ours to write.
        raise RecorderError(
            f"database {url} cannot be opened for writing: {e.strerror or e}; "
            "point WTFLOW_DB_URL at a file you may write, or set it empty to run without recording"
        ) from None


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a folder we may not look into
        return False


def check_usable(url: str, path: Path) -> None:
    """A file there already must be a SQLite database whose schema this wtflow knows: else the
    run would go unrecorded, which is said before anything runs (exit 2), as for any database."""
    if not path.is_file() or path.stat().st_size == 0:
        return  # new: the writer thread creates the schema
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            found = (
                conn.execute("SELECT version_num FROM alembic_version").fetchall()
                if "alembic_version" in tables
                else []
            )
        finally:
            conn.close()
    except sqlite3.Error as e:
        raise RecorderError(
            f"database {url} cannot be used: {e}; "
            "check WTFLOW_DB_URL / [database] url, or set it empty to run without recording"
        ) from None
    current = found[0][0] if found else None
    if current is not None and current not in KNOWN:
        raise RecorderError(
            f"database {url} has schema revision {current!r}, newer than this wtflow knows; upgrade wtflow"
        )
