"""indicators.whitelist, if_in, extra: Zeek intel's meta.* columns kept

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows stored before this were read without them: not whitelisted, matched anywhere.
    with op.batch_alter_table("indicators") as t:
        t.add_column(
            sa.Column("whitelist", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        t.add_column(sa.Column("if_in", sa.String(500), nullable=False, server_default=""))
        t.add_column(sa.Column("extra", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("indicators") as t:
        t.drop_column("extra")
        t.drop_column("if_in")
        t.drop_column("whitelist")
