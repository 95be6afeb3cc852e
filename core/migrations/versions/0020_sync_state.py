"""sync_state: where each indicator source's sync stands (a MISP server's last
timestamp, a feed's digest), shared by replicas instead of a file in the data dir

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_state",
        sa.Column("kind", sa.String(30), primary_key=True),
        sa.Column("name", sa.String(300), primary_key=True),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sync_state")
