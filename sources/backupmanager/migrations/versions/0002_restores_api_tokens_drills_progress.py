"""Restores, API tokens, restore-drill verdicts on jobs, run progress.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 02:16:51.898614
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=128), nullable=False),
        sa.Column("read_only", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "restores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("archive_name", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("phase", sa.String(length=64), nullable=False),
        sa.Column("options_json", sa.Text(), nullable=False),
        sa.Column("plan_json", sa.Text(), nullable=False),
        sa.Column("steps_json", sa.Text(), nullable=False),
        sa.Column("progress_bytes", sa.BigInteger(), nullable=True),
        sa.Column("total_bytes", sa.BigInteger(), nullable=True),
        sa.Column("log_text", sa.Text(), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("restores", schema=None) as batch_op:
        batch_op.create_index("ix_restores_archive", ["archive_name", "id"], unique=False)

    with op.batch_alter_table("commands", schema=None) as batch_op:
        batch_op.add_column(sa.Column("restore_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_commands_restore_id", "restores", ["restore_id"], ["id"], ondelete="SET NULL"
        )

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_drill_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("last_drill_status", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("last_drill_message", sa.Text(), nullable=True))

    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("progress_bytes", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("estimated_bytes", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("estimated_bytes")
        batch_op.drop_column("progress_bytes")

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("last_drill_message")
        batch_op.drop_column("last_drill_status")
        batch_op.drop_column("last_drill_at")

    with op.batch_alter_table("commands", schema=None) as batch_op:
        batch_op.drop_constraint("fk_commands_restore_id", type_="foreignkey")
        batch_op.drop_column("restore_id")

    with op.batch_alter_table("restores", schema=None) as batch_op:
        batch_op.drop_index("ix_restores_archive")

    op.drop_table("restores")
    op.drop_table("api_tokens")
