"""A single sign-on identity's row in `tokens`, so the console's sessions work as usual.

Console sessions hang on a token row (core.sessions): each request checks the
row, and revoking it ends the sessions. A person who logs in through the
provider gets one row per provider identity (issuer + subject): role, entity
and name follow the provider's claims at each login (changes audited). Its
digest is `sso:` and a hash of the identity, which no bearer token can ever
match (those are HMAC hex digests of `vga_` tokens): the row opens sessions,
never the API. `vigia token list` shows it; `vigia token revoke` ends its
sessions now, and the next login through the provider gets a fresh row (the
provider, not Vigía, decides who may log in; the revoked row stays as history).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.oidc_claims import Identity
from core import audit
from core.clock import new_id
from core.tokens import Principal, TokenRow

ACTOR = "system:sso"


def federated_principal(session: Session, who: Identity, now: datetime) -> Principal:
    digest = f"sso:{who.key[:60]}"
    row = session.execute(select(TokenRow).where(TokenRow.digest == digest)).scalar_one_or_none()
    if row is not None and row.revoked_at is not None:
        row.digest = f"sso-revoked:{row.id}"  # kept as history; a fresh row below
        session.flush()
        row = None
    name = f"sso:{who.name}"
    entity = who.entity_id
    if row is None:
        row = TokenRow(
            id=new_id(),
            name=name,
            role=who.role.value,
            entity_id=entity,
            digest=digest,
            created_at=now,
        )
        session.add(row)
        session.flush()
        details = {"role": who.role.value, "name": name, "entity_id": entity, "via": "oidc"}
        audit.append(session, ACTOR, "token.create", "token", row.id, details)
    elif (row.role, row.entity_id, row.name) != (who.role.value, entity, name):
        before = {"role": row.role, "entity_id": row.entity_id, "name": row.name}
        row.role, row.entity_id, row.name = who.role.value, entity, name
        after = {"role": row.role, "entity_id": entity, "name": name}
        audit.append(session, ACTOR, "token.update", "token", row.id, {"from": before, "to": after})
    return Principal(row.id, row.name, who.role, entity)
