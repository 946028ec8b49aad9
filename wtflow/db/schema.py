"""Opening the record to write it: SQLite tuned for several writers, a new schema created from
the tables, Alembic upgrades of existing ones, crash reaping.

Readers never come here: `wtflow.db.read` opens the record read-only and shares only the
schema's revisions and the rule for telling a dead run (`DeathRule`, from db/liveness.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from wtflow.config import mask_url
from wtflow.db.liveness import STALE as STALE
from wtflow.db.liveness import DeathRule as DeathRule
from wtflow.db.revisions import HEAD as HEAD
from wtflow.db.revisions import KNOWN as KNOWN
from wtflow.db.sqlite_file import BUSY_MS as BUSY_MS
from wtflow.db.sqlite_file import create_private
from wtflow.db.tables import metadata, runs
from wtflow.errors import RecorderError
from wtflow.status import Status

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).parent / "migrations"
_PG_LOCK = 0x777466_6C6F77  # pg_advisory_xact_lock key serialising schema upgrades across processes


def open_engine(url: str) -> Engine:
    """An Engine for `url`; a SQLite file is created private (0600) and opened in WAL mode.

    Its SQLite transactions take the write lock when they begin."""

    def make(parsed: URL) -> Engine:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(url, parsed.database)
        # A firewalled host must not hang the start of a run for minutes.
        connect_args = {"connect_timeout": 10} if parsed.get_backend_name() == "postgresql" else {}
        return create_engine(url, pool_pre_ping=True, pool_size=1, max_overflow=2, connect_args=connect_args)

    return engine_for(url, make)


def engine_for(url: str, make: Callable[[URL], Engine]) -> Engine:
    """`make(parsed url)`, with what goes wrong said in one line (RecorderError): a URL that is
    not one, a missing driver, an unknown kind of database, a database that cannot be used."""
    masked = mask_url(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise RecorderError(
            f"database URL {masked!r} is not valid; use e.g. sqlite:///path/wtflow.db "
            "or postgresql+psycopg://user:password@host/db"
        ) from None
    try:
        return make(parsed)
    except ImportError as e:
        hint = "pip install 'wtflow[postgres]'" if parsed.get_backend_name() == "postgresql" else "install it"
        raise RecorderError(
            f"database {masked} needs the Python driver {e.name!r}, which is missing; {hint}"
        ) from None
    except NoSuchModuleError:
        raise RecorderError(
            f"database URL {masked!r} names an unknown kind of database {parsed.drivername!r}; "
            "use sqlite:///path/wtflow.db or postgresql+psycopg://user:password@host/db"
        ) from None
    except SQLAlchemyError as e:
        raise RecorderError(f"database {masked} cannot be used: {reason(e, url)}") from None


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:" and not database.startswith("file:"):
        create_private(url, Path(database))
    engine = create_engine(url, connect_args={"timeout": BUSY_MS / 1000})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # transactions are begun below, not by the driver
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        # Before the switch below: a new file's switch to WAL is then not synced to disk twice.
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; safe with WAL
        # WAL: readers never block the writer. Switching needs the database to itself, so only
        # the first connection ever does it; the mode is kept in the file.
        if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # Take the write lock up front: a deferred transaction that reads and then writes can
        # fail at once with "database is locked" when another process writes, whatever the
        # busy timeout. IMMEDIATE waits its turn instead.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def reason(error: BaseException, url: str = "") -> str:
    """The first line of what the driver said, with any password in it masked."""
    origin = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    line = (str(origin).strip().splitlines() or [type(origin).__name__])[0]
    password = make_url(url).password if url else None
    return line.replace(str(password), "***") if password else line


def prepare(engine: Engine) -> None:
    """Bring the schema to HEAD (creating it in an empty database) and mark dead runs crashed."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
        current = current_revision(conn)
        if current is None and not _has_tables(conn):
            _create(conn)
        elif current != HEAD:
            from alembic import command  # only upgrades pay for importing Alembic

            if current is not None and current not in KNOWN:
                raise RecorderError(
                    f"database {mask_url(engine.url.render_as_string(hide_password=False))} has "
                    f"schema revision {current!r}, newer than this wtflow knows; upgrade wtflow"
                )
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        reap_dead_runs(conn)


def _has_tables(conn: Connection) -> bool:
    return bool(inspect(conn).get_table_names())


def _create(conn: Connection) -> None:
    """A new database gets the schema from the tables and is stamped HEAD: the same schema the
    migrations build (a test compares the two), without importing Alembic or replaying them.
    The first run in a fresh checkout pays a few milliseconds, not a fifth of a second."""
    metadata.create_all(conn, checkfirst=False)  # it has no tables: no need to ask for each
    # The table Alembic keeps its revision in, as Alembic itself creates it.
    conn.execute(
        text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
             "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))")
    )  # fmt: skip
    conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:head)"), {"head": HEAD})


def current_revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def reap_dead_runs(conn: Connection) -> int:
    """Runs left 'running' by a wtflow process that is gone are settled from their journals
    (db/journals.py): nodes that ended get their real status, the rest and the run `crashed`.
    Gone means: on this host, a process that no longer exists; elsewhere, a run whose heartbeat
    stopped STALE ago."""
    from wtflow.db.journals import settle  # it writes through the recorder, which imports this module

    rows = conn.execute(
        select(runs.c.id, runs.c.host, runs.c.user, runs.c.pid, runs.c.heartbeat_at, runs.c.run_dir).where(
            runs.c.status == Status.RUNNING.value
        )
    ).all()
    judge = DeathRule.now()
    dead = [row for row in rows if judge.is_dead(row.host, row.pid, row.heartbeat_at)]
    for row in dead:
        settle(conn, row.id, row.run_dir, {"host": row.host, "user": row.user, "pid": row.pid})
    return len(dead)


def connect(url: str) -> Engine:
    """A writer's Engine on an up-to-date schema (dead runs marked crashed), or a RecorderError
    saying what is wrong and how to fix it."""
    engine = open_engine(url)
    try:
        prepare(engine)
    except RecorderError:
        engine.dispose()
        raise
    except SQLAlchemyError as e:
        engine.dispose()
        raise RecorderError(
            f"database {mask_url(url)} cannot be used: {reason(e, url)}; "
            "check WTFLOW_DB_URL / [database] url, or set it empty to run without recording"
        ) from None
    return engine
