"""What resuming needs: each attempt's digest, the run a run resumed, and each node's decision
(`reused from <run>` or why it ran).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("digest", sa.String(80), nullable=True))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("resumed_from", sa.String(32), nullable=True))
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("decision", sa.Text, nullable=True))


def downgrade() -> None:
    for table, column in (("attempts", "digest"), ("runs", "resumed_from"), ("nodes", "decision")):
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column)
