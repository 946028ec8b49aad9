"""Dependencies across branches and dynamic children: the paths each node waits for, and
whether it was added at run time by its parent's PyFunc.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("depends_on", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("dynamic", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("dynamic")
        batch.drop_column("depends_on")
