"""certification_state and certification_trend: each entity's certification as the
national figures count it (its newest certificate's status, level and validity,
its newest assessment's status, score and progress, its level and department, the
months its certificates covered it) and the trend's counts at each month's start,
kept by certification.progress_state. Left empty here: start-up fills them
(progress_state.ensure) when they do not hold every entity.

Revision ID: 0022
Revises: 0021
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "certification_state",
        sa.Column("entity_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("level", sa.String(30), nullable=False),
        sa.Column("department", sa.String(64), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("certificate_id", sa.String(40), nullable=True),
        sa.Column("cert_status", sa.String(20), nullable=True),
        sa.Column("cert_level", sa.String(20), nullable=True),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("assessment_status", sa.String(20), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("progress", sa.Float(), nullable=True),
        sa.Column("months", sa.JSON(), nullable=True),
        sa.Column("cover_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cover_until", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "certification_trend",
        sa.Column("month", sa.Date(), primary_key=True),
        sa.Column("covered", sa.Integer(), nullable=False),
        sa.Column("registered", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("certification_trend")
    op.drop_table("certification_state")
