"""The schema of the record, as SQLAlchemy 2.0 typed tables.

    runs ──< nodes ──< attempts ──< artifacts

Ids are uuid4 hex strings (unguessable, the same on every backend); times are UTC.
Changing anything here needs a migration in `migrations/versions/`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


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


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workflow: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    exit_code: Mapped[int | None]
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    host: Mapped[str] = mapped_column(Text)
    user: Mapped[str] = mapped_column(Text)
    pid: Mapped[int]
    wtflow_version: Mapped[str] = mapped_column(String(32))
    config: Mapped[dict[str, Any]]
    run_dir: Mapped[str] = mapped_column(Text)
    heartbeat_at: Mapped[datetime | None]  # refreshed while the run goes on (see recorder.HEARTBEAT)

    __table_args__ = (
        Index("ix_runs_started_at", "started_at"),
        Index("ix_runs_workflow_started_at", "workflow", "started_at"),
    )


class NodeRow(Base):
    __tablename__ = "nodes"

    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(Text)
    path: Mapped[str] = mapped_column(Text)  # names joined by "/" (names never hold a "/")
    parent: Mapped[int | None]
    position: Mapped[int]
    kind: Mapped[str | None] = mapped_column(String(16))  # command, pyfunc, or None for a group
    executes: Mapped[str | None] = mapped_column(Text)
    parallel: Mapped[bool]
    allow_failure: Mapped[bool]
    status: Mapped[str] = mapped_column(String(16))
    exit_code: Mapped[int | None]
    attempts: Mapped[int]
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]

    __table_args__ = (ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),)


class AttemptRow(Base):
    __tablename__ = "attempts"

    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    node_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(16))
    exit_code: Mapped[int | None]  # negative: killed by that signal
    pid: Mapped[int | None]
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    # [["stdout", 120], ["stderr", 31], ...]: byte counts in arrival order; None when too long to keep
    output_order: Mapped[list[Any] | None] = mapped_column(JSON)

    __table_args__ = (
        ForeignKeyConstraint(["run_id", "node_index"], ["nodes.run_id", "nodes.index"], ondelete="CASCADE"),
    )


class ArtifactRow(Base):
    __tablename__ = "artifacts"

    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    node_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(16), primary_key=True)  # stdout, stderr
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        ForeignKeyConstraint(
            ["run_id", "node_index", "attempt"],
            ["attempts.run_id", "attempts.node_index", "attempts.n"],
            ondelete="CASCADE",
        ),
    )
