"""certification: catalogues, assessments, answers, evidence, certificates;
entities.parent_id and entities.active

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "catalogues",
        sa.Column("version", sa.String(40), primary_key=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("loaded_at", _TS, nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "assessments",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column(
            "catalogue_version", sa.String(40), sa.ForeignKey("catalogues.version"), nullable=False
        ),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("decision", sa.String(20), nullable=True),
        sa.Column("decision_reasons", sa.JSON(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("submitted_at", _TS, nullable=True),
        sa.Column("decided_at", _TS, nullable=True),
    )
    op.create_index("ix_assessments_entity_id", "assessments", ["entity_id"])
    op.create_index("ix_assessments_status", "assessments", ["status"])
    op.create_table(
        "assessment_answers",
        sa.Column(
            "assessment_id",
            _ID,
            sa.ForeignKey("assessments.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("control_id", sa.String(40), primary_key=True),
        sa.Column("answer", sa.String(20), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("review", sa.String(10), nullable=True),
        sa.Column("review_comment", sa.Text(), nullable=False),
        sa.Column("reviewed_by", sa.String(200), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "evidence",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "assessment_id",
            _ID,
            sa.ForeignKey("assessments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("control_id", sa.String(40), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("filename", sa.String(300), nullable=False),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("uploaded_at", _TS, nullable=False),
        sa.Column("uploaded_by", sa.String(200), nullable=False),
    )
    op.create_index("ix_evidence_assessment_id", "evidence", ["assessment_id"])
    op.create_table(
        "certificates",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("assessment_id", _ID, sa.ForeignKey("assessments.id"), nullable=False),
        sa.Column("level", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("issued_at", _TS, nullable=False),
        sa.Column("valid_until", _TS, nullable=False),
        sa.Column("observation", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("reminders", sa.JSON(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_index("ix_certificates_entity_id", "certificates", ["entity_id"])
    op.create_index("ix_certificates_status", "certificates", ["status"])
    op.create_index("ix_certificates_valid_until", "certificates", ["valid_until"])
    with op.batch_alter_table("entities") as batch:
        batch.add_column(sa.Column("parent_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("active", sa.Boolean(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("entities") as batch:
        batch.drop_column("active")
        batch.drop_column("parent_id")
    for table in ("certificates", "evidence", "assessment_answers", "assessments", "catalogues"):
        op.drop_table(table)
