"""Index runs by (job_id, id): a job's newest runs, for the dashboard and the history pages.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 03:00:00
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_job_id", "runs", ["job_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_runs_job_id", table_name="runs")
