"""The SQLite file of a record, without SQLAlchemy: which URLs name a local file, and creating
that file owner-only. The recorder checks this much before a run starts and leaves the rest
(importing SQLAlchemy, connecting, the schema) to its writer thread."""

from __future__ import annotations

import os
import re
from pathlib import Path

from wtflow.errors import RecorderError

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
