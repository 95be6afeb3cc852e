"""sensors.last_refusal: the last refusal a sensor met, from its heartbeat

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sensors") as t:
        t.add_column(sa.Column("last_refusal", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sensors") as t:
        t.drop_column("last_refusal")
