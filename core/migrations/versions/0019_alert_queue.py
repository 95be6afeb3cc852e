"""alert_queue: what the console's alert queue filters and sorts by (issue 15)

received_at (when the centre stored the alert: the queue's default order), assignee,
the observed value and both addresses as columns (sortable), search_text (the value,
indicators, rule name and addresses, lower case: the queue's free text), and the
indexes its first page reads: by received time, within an entity or a status.

Revision ID: 0019
Revises: 0018
"""

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def _columns(doc: dict[str, Any]) -> dict[str, Any]:
    # As correlator.rows.queue_columns computes them for new alerts (kept here so
    # that this revision does not change when that code does).
    enr = doc["threat"]["enrichments"]
    atomic = str(enr[0]["matched"]["atomic"])
    src = (doc.get("source") or {}).get("ip")
    dst = (doc.get("destination") or {}).get("ip")
    parts = [atomic, *(str(e["indicator"]["value"]) for e in enr)]
    parts += [str(doc["rule"]["name"])] if "rule" in doc else []
    parts += [p for p in (src, dst) if p]
    return {
        "atomic": atomic,
        "source_ip": src,
        "destination_ip": dst,
        "search_text": "\n".join(dict.fromkeys(parts)).lower(),
    }


def upgrade() -> None:
    with op.batch_alter_table("alerts") as t:
        t.add_column(sa.Column("received_at", _TS, nullable=True))
        t.add_column(sa.Column("assignee", sa.String(200), nullable=True))
        t.add_column(sa.Column("atomic", sa.Text(), nullable=False, server_default=""))
        t.add_column(sa.Column("source_ip", sa.String(64), nullable=True))
        t.add_column(sa.Column("destination_ip", sa.String(64), nullable=True))
        t.add_column(sa.Column("search_text", sa.Text(), nullable=False, server_default=""))
    # Alerts stored before this: received at the latest when last changed.
    op.execute("UPDATE alerts SET received_at = updated_at")
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, doc FROM alerts")).all()
    update = sa.text(
        "UPDATE alerts SET atomic = :atomic, source_ip = :source_ip,"
        " destination_ip = :destination_ip, search_text = :search_text WHERE id = :id"
    )
    for alert_id, doc in rows:
        parsed = json.loads(doc) if isinstance(doc, str | bytes) else doc
        bind.execute(update, {"id": alert_id, **_columns(parsed)})
    with op.batch_alter_table("alerts") as t:
        t.alter_column("received_at", existing_type=_TS, nullable=False)
    op.create_index("ix_alerts_received", "alerts", ["received_at", "id"])
    op.create_index("ix_alerts_entity_received", "alerts", ["entity_id", "received_at", "id"])
    op.create_index("ix_alerts_status_received", "alerts", ["status", "received_at", "id"])
    op.create_index("ix_alerts_observer_received", "alerts", ["observer", "received_at", "id"])


def downgrade() -> None:
    for name in (
        "ix_alerts_observer_received",
        "ix_alerts_status_received",
        "ix_alerts_entity_received",
        "ix_alerts_received",
    ):
        op.drop_index(name, "alerts")
    with op.batch_alter_table("alerts") as t:
        for column in (
            "search_text",
            "destination_ip",
            "source_ip",
            "atomic",
            "assignee",
            "received_at",
        ):
            t.drop_column(column)
