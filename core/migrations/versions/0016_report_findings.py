"""report_findings, report_incidents: external reports (Shadowserver, abuse.ch,
phishing lists, generic CSV) taken in, and the incident per entity, kind and day

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "report_findings",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(80), nullable=False),
        sa.Column("seen_at", _TS, nullable=False),
        sa.Column("imported_at", _TS, nullable=False),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=True),
        sa.Column(
            "incident_id",
            _ID,
            sa.ForeignKey("incidents.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("ip", sa.String(45), nullable=True),
        sa.Column("name", sa.String(300), nullable=True),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("detail", sa.String(200), nullable=False),
        sa.Column("doc", sa.JSON(), nullable=False),
    )
    op.create_index("ix_report_findings_seen", "report_findings", ["kind", "seen_at"])
    op.create_index("ix_report_findings_entity_id", "report_findings", ["entity_id"])
    op.create_index("ix_report_findings_incident_id", "report_findings", ["incident_id"])
    op.create_table(
        "report_incidents",
        sa.Column("entity_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(80), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column(
            "incident_id",
            _ID,
            sa.ForeignKey("incidents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("hosts", sa.Integer(), nullable=False),
    )
    op.create_index("ix_report_incidents_incident_id", "report_incidents", ["incident_id"])


def downgrade() -> None:
    op.drop_table("report_incidents")
    op.drop_table("report_findings")
