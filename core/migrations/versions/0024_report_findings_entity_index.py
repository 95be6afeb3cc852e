"""report_findings: no index of its own on entity_id. Every finding written with an
entity also carries that entity's incident (report_incidents holds which), so an
entity's findings are found through its incidents and the unattributed ones through
the incident index (incident_id IS NULL): one index fewer written per report row.

Revision ID: 0024
Revises: 0023
"""

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_report_findings_entity_id", table_name="report_findings")


def downgrade() -> None:
    op.create_index("ix_report_findings_entity_id", "report_findings", ["entity_id"])
