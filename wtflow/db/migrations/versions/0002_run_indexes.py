"""Indexes for `wtflow runs` (newest first, by workflow) once the record holds thousands of runs.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_started_at", "runs", ["started_at"])
    op.create_index("ix_runs_workflow_started_at", "runs", ["workflow", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_workflow_started_at", "runs")
    op.drop_index("ix_runs_started_at", "runs")
