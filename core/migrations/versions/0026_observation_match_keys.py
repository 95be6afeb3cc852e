"""observations: match_keys (correlator.sqlkeys), a bigint[] under a GIN index on
PostgreSQL, so that a retro-hunt reads only the observations its indicators may
match; a partial index finds the rows stored before (no keys), read whole. On SQLite
the column stays empty and a retro-hunt reads every document, as before.

Revision ID: 0026
Revises: 0025
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    keys = sa.JSON().with_variant(postgresql.ARRAY(sa.BigInteger()), "postgresql")
    op.add_column("observations", sa.Column("match_keys", keys, nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_observations_match_keys", "observations", ["match_keys"], postgresql_using="gin"
        )
        op.create_index(
            "ix_observations_unkeyed",
            "observations",
            ["id"],
            postgresql_where=sa.text("match_keys IS NULL"),
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_observations_unkeyed", table_name="observations")
        op.drop_index("ix_observations_match_keys", table_name="observations")
    op.drop_column("observations", "match_keys")
