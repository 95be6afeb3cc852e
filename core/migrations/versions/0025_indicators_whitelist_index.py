"""indicators: a partial index of the whitelisted rows (few), so that a restart from
the index snapshot and a retro-hunt read them without a pass over every indicator
(a million rows: 0.15 s of CPU on SQLite). The predicate is the query's own text.

Revision ID: 0025
Revises: 0024
"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_indicators_whitelist",
        "indicators",
        ["whitelist"],
        sqlite_where=sa.text("whitelist IS 1"),
        postgresql_where=sa.text("whitelist IS true"),
    )


def downgrade() -> None:
    op.drop_index("ix_indicators_whitelist", table_name="indicators")
