"""Data between nodes: a PyFunc's result and a node's declared files are artifact rows with
their kind and SHA-256 (a declared name may be long, and a glob gives one row per file); a run keeps the
workflow's parameters and its provenance.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("params", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("provenance", sa.JSON(), nullable=True))
    with op.batch_alter_table("artifacts") as batch:
        batch.alter_column("name", type_=sa.Text(), existing_type=sa.String(16), existing_nullable=False)
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="stream"))
        batch.add_column(sa.Column("sha256", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("provenance")
        batch.drop_column("params")
    with op.batch_alter_table("artifacts") as batch:
        batch.drop_column("sha256")
        batch.drop_column("kind")
        batch.alter_column("name", type_=sa.String(16), existing_type=sa.Text(), existing_nullable=False)
