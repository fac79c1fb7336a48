"""The archive index keeps a copy of YunoHost's info.json (the web process cannot read the archives).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 04:01:46.648779
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("archives", schema=None) as batch_op:
        batch_op.add_column(sa.Column("yunohost_info_json", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("archives", schema=None) as batch_op:
        batch_op.drop_column("yunohost_info_json")
