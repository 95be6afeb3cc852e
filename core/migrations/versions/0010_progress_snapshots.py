"""progress_snapshots: the progress to the target as it stood each day

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "progress_snapshots",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("target", sa.Float(), nullable=False),
        sa.Column("certified", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("ratio", sa.Float(), nullable=False),
        sa.Column("by_level", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("progress_snapshots")
