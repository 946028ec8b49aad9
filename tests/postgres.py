"""A real PostgreSQL server for the suite: started once, as an unprivileged user, on a Unix socket."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

USER = "wtflow-pg"


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for root in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (root / name).exists():
            return str(root / name)
    return None


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required in CI: {reason}")
    pytest.skip(reason)


def _as_user(argv: list[str]) -> list[str]:
    if os.getuid() != 0:
        return argv
    return ["runuser", "-u", USER, "--", *argv]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Socket directory of a running server; stopped at the end of the session."""
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not initdb or not pg_ctl:
        _unavailable("initdb/pg_ctl not found (apt-get install postgresql)")
    assert initdb
    assert pg_ctl
    if os.getuid() == 0:
        try:
            pwd.getpwnam(USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", USER], check=True)
    # pytest's temp dirs are root-only (0700); the server needs a folder of its own.
    base = Path(tempfile.mkdtemp(prefix="wtflow-pg-"))
    os.chmod(base, 0o755)
    if os.getuid() == 0:
        shutil.chown(base, USER)
    data = base / "data"
    subprocess.run(_as_user([initdb, "-U", "wtflow", "--auth=trust", "-D", str(data)]),
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run(
        _as_user([pg_ctl, "-w", "-D", str(data), "-l", str(base / "log"),
                  "-o", f"-k {base} -c listen_addresses='' -c max_connections=200 -c fsync=off", "start"]),
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        yield str(base)
    finally:
        subprocess.run(_as_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_db_url(postgres_server: str) -> str:
    """A fresh, empty database on the suite's server."""
    pytest.importorskip("psycopg")
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(host=postgres_server, user="wtflow", dbname="postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://wtflow@/{name}?host={postgres_server}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test against a SQLite file and the real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'wtflow.db'}"
    return str(request.getfixturevalue("postgres_db_url"))
