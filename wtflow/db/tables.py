"""The schema of the record, as SQLAlchemy Core tables.

    runs ──< nodes ──< attempts ──< artifacts

Ids are uuid4 hex strings (unguessable, the same on every backend); times are UTC. Core, not
the ORM: every recorded run imports this, and the ORM would add ~90 ms to each start.
Changing anything here needs a migration in `migrations/versions/`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on SQLite (which keeps no zone) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("workflow", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("exit_code", Integer),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("ended_at", UTCDateTime()),
    Column("host", Text, nullable=False),
    Column("user", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("wtflow_version", String(32), nullable=False),
    Column("config", JSON, nullable=False),  # the effective settings, passwords masked
    Column("run_dir", Text, nullable=False),
    Column("heartbeat_at", UTCDateTime()),  # refreshed while the run goes on (recorder.HEARTBEAT)
    Column("params", JSON),  # the workflow function's parameters (`-p NAME=VALUE`)
    Column("provenance", JSON),  # command line, wtfile and its SHA-256, git commit, selection
    Column("resumed_from", String(32)),  # the run whose results it reused (--resume)
    Index("ix_runs_started_at", "started_at"),
    Index("ix_runs_workflow_started_at", "workflow", "started_at"),
)

nodes = Table(
    "nodes",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("index", Integer, primary_key=True, autoincrement=False),
    Column("name", Text, nullable=False),
    Column("path", Text, nullable=False),  # names joined by "/" (names never hold a "/")
    Column("parent", Integer),
    Column("position", Integer, nullable=False),
    Column("kind", String(16)),  # command, pyfunc, or None for a group
    Column("executes", Text),
    Column("parallel", Boolean, nullable=False),
    Column("allow_failure", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("exit_code", Integer),
    Column("attempts", Integer, nullable=False),
    Column("started_at", UTCDateTime()),
    Column("ended_at", UTCDateTime()),
    Column("reason", Text),  # why it was skipped: "upstream failed: ci/build", "deadline", ...
    Column("decision", Text),  # "reuse: succeeded in 3f2a..." or why it ran ("run: command changed")
    Column("tags", JSON),  # ["db", "slow"]: its own and its ancestors'; None when it has none
    Column("depends_on", JSON),  # ["ci/build", ...]: the paths it waited for (after=, artifacts read)
    Column("dynamic", Boolean),  # added at run time, returned by its parent's PyFunc
    ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
)

attempts = Table(
    "attempts",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("node_index", Integer, primary_key=True, autoincrement=False),
    Column("n", Integer, primary_key=True, autoincrement=False),
    Column("status", String(16), nullable=False),
    Column("exit_code", Integer),  # negative: killed by that signal
    Column("pid", Integer),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("ended_at", UTCDateTime()),
    # [["stdout", 120], ["stderr", 31], ...]: byte counts in arrival order; None when too long to keep
    Column("output_order", JSON),
    # Where it ran: this machine's name, or a Dask worker's; None if it never started. Last, as
    # migration 0005 added it: a new database made from these tables matches a migrated one.
    Column("host", Text),
    Column("digest", String(80)),  # wtflow.digests.Digest: what it ran, with what, after what
    ForeignKeyConstraint(["run_id", "node_index"], ["nodes.run_id", "nodes.index"], ondelete="CASCADE"),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("node_index", Integer, primary_key=True, autoincrement=False),
    Column("attempt", Integer, primary_key=True, autoincrement=False),
    # stdout, stderr, result, or "<declared name>/<file name>" for each file a declared path matched
    Column("name", Text, primary_key=True),
    Column("path", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False, server_default="stream"),  # stream, result, file
    Column("sha256", String(64)),  # of a kept file (result, declared); streams grow, so none
    ForeignKeyConstraint(
        ["run_id", "node_index", "attempt"],
        ["attempts.run_id", "attempts.node_index", "attempts.n"],
        ondelete="CASCADE",
    ),
)
