"""entities.webhook_secret: room for the sealed (AES-GCM) value

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Values in clear are sealed at start-up by the wiring: sealing needs the
    # installation's key, which a migration does not have.
    with op.batch_alter_table("entities") as t:
        t.alter_column(
            "webhook_secret",
            existing_type=sa.String(200),
            type_=sa.String(500),
            existing_nullable=False,
            existing_server_default="",
        )


def downgrade() -> None:
    with op.batch_alter_table("entities") as t:
        t.alter_column(
            "webhook_secret",
            existing_type=sa.String(500),
            type_=sa.String(200),
            existing_nullable=False,
            existing_server_default="",
        )
