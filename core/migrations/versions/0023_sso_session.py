"""console_sessions.sso_issuer, console_sessions.id_token: a session opened through
single sign-on remembers its provider and ID token, so the console's logout can end
the person's session at the provider too (RP-initiated logout, id_token_hint)

Revision ID: 0023
Revises: 0022
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("console_sessions", sa.Column("sso_issuer", sa.String(300), nullable=True))
    op.add_column("console_sessions", sa.Column("id_token", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("console_sessions") as batch:
        batch.drop_column("id_token")
        batch.drop_column("sso_issuer")
