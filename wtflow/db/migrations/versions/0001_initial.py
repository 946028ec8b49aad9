"""The first schema: runs, nodes, attempts, artifacts.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from wtflow.db.tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("workflow", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("exit_code", sa.Integer),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime()),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("user", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("wtflow_version", sa.String(32), nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("run_dir", sa.Text, nullable=False),
    )
    op.create_table(
        "nodes",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("index", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("parent", sa.Integer),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16)),
        sa.Column("executes", sa.Text),
        sa.Column("parallel", sa.Boolean, nullable=False),
        sa.Column("allow_failure", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("exit_code", sa.Integer),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("started_at", UTCDateTime()),
        sa.Column("ended_at", UTCDateTime()),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
    )
    op.create_table(
        "attempts",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("node_index", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("n", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("exit_code", sa.Integer),
        sa.Column("pid", sa.Integer),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime()),
        sa.ForeignKeyConstraint(
            ["run_id", "node_index"], ["nodes.run_id", "nodes.index"], ondelete="CASCADE"
        ),
    )
    op.create_table(
        "artifacts",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("node_index", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("attempt", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(16), primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id", "node_index", "attempt"],
            ["attempts.run_id", "attempts.node_index", "attempts.n"],
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    for table in ("artifacts", "attempts", "nodes", "runs"):
        op.drop_table(table)
