"""incidents: incidents and their entities, timeline, tasks, observables, SLA
breaches, notification outbox; alerts.incident_id; entity contacts and webhook

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def _fk() -> sa.Column:
    return sa.Column(
        "incident_id", _ID, sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("rsit_class", sa.String(60), nullable=True),
        sa.Column("rsit_type", sa.String(60), nullable=True),
        sa.Column("tlp", sa.String(20), nullable=False),
        sa.Column("pap", sa.String(10), nullable=False),
        sa.Column("ncciss", sa.Integer(), nullable=False),
        sa.Column("priority", sa.String(2), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("resolution", sa.String(40), nullable=True),
        sa.Column("merged_into", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("occurred_at", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("last_alert_at", _TS, nullable=True),
        sa.Column("acknowledged_at", _TS, nullable=True),
        sa.Column("contained_at", _TS, nullable=True),
        sa.Column("resolved_at", _TS, nullable=True),
        sa.Column("closed_at", _TS, nullable=True),
        sa.Column("due_acknowledge", _TS, nullable=True),
        sa.Column("due_contain", _TS, nullable=True),
        sa.Column("due_resolve", _TS, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_incidents_priority", "incidents", ["priority"])
    op.create_index("ix_incidents_status", "incidents", ["status"])
    op.create_index("ix_incidents_created_at", "incidents", ["created_at"])
    op.create_table(
        "incident_entities",
        sa.Column(
            "incident_id",
            _ID,
            sa.ForeignKey("incidents.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("entity_id", sa.String(64), primary_key=True),
        sa.Column("notified_at", _TS, nullable=True),
        sa.Column("reply_due", _TS, nullable=True),
        sa.Column("acknowledged_at", _TS, nullable=True),
        sa.Column("replied_at", _TS, nullable=True),
    )
    op.create_index("ix_incident_entities_entity_id", "incident_entities", ["entity_id"])
    op.create_table(
        "incident_entries",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        _fk(),
        sa.Column("at", _TS, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("tlp", sa.String(20), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
    )
    op.create_index("ix_incident_entries_incident_id", "incident_entries", ["incident_id"])
    op.create_table(
        "incident_tasks",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        _fk(),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("assignee", sa.String(200), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("done_at", _TS, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_incident_tasks_incident_id", "incident_tasks", ["incident_id"])
    op.create_table(
        "incident_observables",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        _fk(),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("tlp", sa.String(20), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.UniqueConstraint("incident_id", "type", "value"),
    )
    op.create_index("ix_incident_observables_incident_id", "incident_observables", ["incident_id"])
    op.create_table(
        "sla_breaches",
        sa.Column(
            "incident_id",
            _ID,
            sa.ForeignKey("incidents.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("clock", sa.String(20), primary_key=True),
        sa.Column("entity_id", sa.String(64), primary_key=True),
        sa.Column("due_at", _TS, nullable=False),
        sa.Column("found_at", _TS, nullable=False),
    )
    op.create_table(
        "notifications",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        _fk(),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("target", sa.String(500), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("sent_at", _TS, nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
    )
    op.create_index("ix_notifications_incident_id", "notifications", ["incident_id"])
    op.create_index("ix_notifications_status", "notifications", ["status"])
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("incident_id", sa.Integer(), nullable=True))
        batch.create_index("ix_alerts_incident_id", ["incident_id"])
    with op.batch_alter_table("entities") as batch:
        batch.add_column(sa.Column("contacts", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(
            sa.Column("webhook_url", sa.String(500), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("webhook_secret", sa.String(200), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("entities") as batch:
        batch.drop_column("webhook_secret")
        batch.drop_column("webhook_url")
        batch.drop_column("contacts")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_index("ix_alerts_incident_id")
        batch.drop_column("incident_id")
    for table in (
        "notifications",
        "sla_breaches",
        "incident_observables",
        "incident_tasks",
        "incident_entries",
        "incident_entities",
        "incidents",
    ):
        op.drop_table(table)
