"""Sharing out: TAXII's keyset indexes, incident_observables.added_at, misp_shares

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_index("ix_indicators_tlp_loaded", "indicators", ["tlp", "loaded_at", "id"])
    with op.batch_alter_table("incident_observables") as t:
        t.add_column(sa.Column("added_at", _TS, nullable=True))
    # Observables kept before this joined their incident when it was opened.
    op.execute(
        "UPDATE incident_observables SET added_at = (SELECT created_at FROM incidents"
        " WHERE incidents.id = incident_observables.incident_id)"
    )
    with op.batch_alter_table("incident_observables") as t:
        t.alter_column("added_at", existing_type=_TS, nullable=False)
    op.create_index("ix_incident_observables_added", "incident_observables", ["added_at", "id"])
    op.create_table(
        "misp_shares",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "incident_id",
            _ID,
            sa.ForeignKey("incidents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("event_uuid", sa.String(36), nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("sent_at", _TS, nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
    )
    op.create_index("ix_misp_shares_incident_id", "misp_shares", ["incident_id"])
    op.create_index("ix_misp_shares_status", "misp_shares", ["status"])


def downgrade() -> None:
    op.drop_table("misp_shares")
    op.drop_index("ix_incident_observables_added", table_name="incident_observables")
    with op.batch_alter_table("incident_observables") as t:
        t.drop_column("added_at")
    op.drop_index("ix_indicators_tlp_loaded", table_name="indicators")
