"""notify_prefs and notify_digest: how each entity wants to hear of incidents per
RSIT class (immediate or a daily digest), and the notices held for the digest

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notify_prefs",
        sa.Column("entity_id", sa.String(64), primary_key=True),
        sa.Column("rsit_class", sa.String(60), primary_key=True),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "notify_digest",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_notify_digest_waiting", "notify_digest", ["sent_at", "entity_id", "day"])


def downgrade() -> None:
    op.drop_index("ix_notify_digest_waiting", "notify_digest")
    op.drop_table("notify_digest")
    op.drop_table("notify_prefs")
