"""The incident's owner: the analyst who works it (issue 15)

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents") as t:
        t.add_column(sa.Column("owner", sa.String(200), nullable=True))
    op.create_index("ix_incidents_owner", "incidents", ["owner"])


def downgrade() -> None:
    op.drop_index("ix_incidents_owner", table_name="incidents")
    with op.batch_alter_table("incidents") as t:
        t.drop_column("owner")
