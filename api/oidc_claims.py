"""Who a provider's identity is in Vigía: its claims mapped to a role and an entity.

Configuration, not code, and each provider's own (core.sso_config): its
`role_claim` (`VIGIA_OIDC_ROLE_CLAIM`) names the claim holding the person's
groups (a dotted path reaches nested ones, e.g. Keycloak's `realm_access.roles`;
a list or one string), its `roles` (`VIGIA_OIDC_ROLES`) map group values to
Vigía roles, and an entity role is bound to the entity named by its
`entity_claim` (`VIGIA_OIDC_ENTITY_CLAIM`), which must be in the registry. A person in several
mapped groups gets the widest role (admin, analyst, auditor, entity). No mapped
group, an entity role without an entity, or an entity not in the registry: the
identity is refused (`Unmapped`), with a reason for the API and a catalogue key
for the console.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.sso_config import OidcProvider
from core.tokens import Principal, Role

if TYPE_CHECKING:
    from api.oidc import Provider

WIDEST_FIRST = (Role.ADMIN, Role.ANALYST, Role.AUDITOR, Role.ENTITY)


@dataclass(frozen=True)
class Identity:
    issuer: str
    subject: str
    name: str
    role: Role
    entity_id: str | None

    @property
    def key(self) -> str:
        """A stable id for this person at this provider (sub is unique per issuer)."""
        return hashlib.sha256(f"{self.issuer}\0{self.subject}".encode()).hexdigest()

    def principal(self) -> Principal:
        # An API bearer JWT writes nothing: its principal is made per request.
        return Principal(f"sso:{self.key[:28]}", f"sso:{self.name}", self.role, self.entity_id)


class Unmapped(Exception):
    """A valid identity Vigía gives no access to."""

    def __init__(self, reason: str, key: str, **params: str) -> None:
        super().__init__(reason)
        self.reason, self.key, self.params = reason, key, params


def claim(claims: dict[str, Any], path: str) -> Any:
    found: Any = claims
    for part in path.split("."):
        if not isinstance(found, dict):
            return None
        found = found.get(part)
    return found


def _values(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, str)]
    return []


def _widest(groups: list[str], config: OidcProvider) -> Role | None:
    mapped = {Role(config.roles[g]) for g in groups if g in config.roles}
    return next((r for r in WIDEST_FIRST if r in mapped), None)


def missing(claims: dict[str, Any], config: OidcProvider) -> bool:
    """Whether the claims lack what the mapping reads: no group claim at all, or an
    entity role without the entity claim. (Present but unmapped is an answer, not a
    gap: many providers put groups in the userinfo endpoint only, none put others.)"""
    groups = claim(claims, config.role_claim)
    if groups is None:
        return True
    entity = config.entity_claim
    return _widest(_values(groups), config) is Role.ENTITY and claim(claims, entity) is None


def identity(
    claims: dict[str, Any], provider: Provider, entity_exists: Callable[[str], bool]
) -> Identity:
    """Who the claims (already checked by `provider`) are in Vigía, by its mapping."""
    config = provider.config
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise Unmapped("the token names no subject", "sso.no_subject")
    name = next(
        (
            v
            for v in (claims.get("preferred_username"), claims.get("email"), subject)
            if isinstance(v, str) and v
        ),
        subject,
    )[:100]
    role = _widest(_values(claim(claims, config.role_claim)), config)
    if role is None:
        raise Unmapped(
            f"no Vigía role for {name}: none of its {config.role_claim!r} values "
            f"is mapped in {provider.roles_setting}",
            "sso.no_role",
            name=name,
        )
    entity_id = None
    if role is Role.ENTITY:
        named = _values(claim(claims, config.entity_claim))
        if len(named) != 1:
            raise Unmapped(
                f"{name} has the entity role but its {config.entity_claim!r} claim "
                "does not name one entity",
                "sso.no_entity",
                name=name,
            )
        entity_id = named[0]
        if not entity_exists(entity_id):
            raise Unmapped(
                f"entity {entity_id!r} of {name} is not in the registry",
                "sso.unknown_entity",
                name=name,
                entity=entity_id,
            )
    issuer = str(claims.get("iss", provider.issuer))
    return Identity(issuer, subject, name, role, entity_id)
