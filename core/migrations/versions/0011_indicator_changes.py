"""indicators.changed_in, indicator_version.rebuild: live indexes refresh incrementally

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows stored before this carry 0: a live index built from scratch holds them.
    with op.batch_alter_table("indicators") as t:
        t.add_column(sa.Column("changed_in", sa.BigInteger(), nullable=False, server_default="0"))
        t.create_index("ix_indicators_changed_in", ["changed_in"])
    with op.batch_alter_table("indicator_version") as t:
        t.add_column(sa.Column("rebuild", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("indicator_version") as t:
        t.drop_column("rebuild")
    with op.batch_alter_table("indicators") as t:
        t.drop_index("ix_indicators_changed_in")
        t.drop_column("changed_in")
