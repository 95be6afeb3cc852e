"""alert_keys: grouping keys of alerts, so grouping looks incidents up by index

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Filled for alerts already in incidents by the grouping sweep (it backfills).
    op.create_table(
        "alert_keys",
        sa.Column(
            "alert_id",
            sa.String(32),
            sa.ForeignKey("alerts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("key", sa.String(40), primary_key=True),
    )
    op.create_index("ix_alert_keys_key", "alert_keys", ["key"])


def downgrade() -> None:
    op.drop_index("ix_alert_keys_key", "alert_keys")
    op.drop_table("alert_keys")
