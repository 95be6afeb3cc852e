"""Single sign-on's providers as configured (api/oidc.py uses them; docs/security.md).

`VIGIA_OIDC_PROVIDERS` lists them (JSON in the environment, an array of tables
`[[vigia.oidc_providers]]` in the TOML file), each with the name its login
button shows, its issuer, Vigía's client there and its own claim mapping. The
older single-provider settings (`VIGIA_OIDC_ISSUER`, `VIGIA_OIDC_CLIENT_ID`, …)
keep working: they are read as a list of one. A provider configured by halves
stops the start with one line naming it (`check`), not the first login.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

ROLES = ("admin", "analyst", "auditor", "entity")  # what single sign-on may give


class OidcProvider(BaseModel):
    """One OpenID Connect provider Vigía accepts identities from."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", description="on the login button: «Entrar con …»")
    issuer: str = Field(default="", description="the provider's issuer URL")
    client_id: str = Field(default="", description="Vigía's client id at the provider")
    client_secret: SecretStr = Field(
        default=SecretStr(""), description="the client's secret; empty: a public PKCE client"
    )
    audience: str = Field(default="", description="the `aud` of API JWTs; the client id if empty")
    scopes: str = "openid profile email"
    role_claim: str = Field(default="groups", description="claim (dotted path) of groups")
    roles: dict[str, str] = Field(default_factory=dict, description="claim value → role")
    entity_claim: str = Field(default="", description="claim naming an entity user's entity")


def secure_url(url: str) -> bool:
    """https://, or http:// to a loopback address (a provider on this machine)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def check(providers: list[OidcProvider], weak_secret: Callable[[str], bool]) -> None:
    """Raise ValueError with one line on the first provider configured wrong."""
    names: set[str] = set()
    issuers: set[str] = set()
    for i, p in enumerate(providers):
        where = f"VIGIA_OIDC_PROVIDERS[{i}]" + (f" ({p.name})" if p.name else "")
        needed = {"name": p.name, "issuer": p.issuer, "client_id": p.client_id, "roles": p.roles}
        missing = [field for field, given in needed.items() if not given]
        if missing:
            raise ValueError(f"{where}: needs {', '.join(missing)}")
        if not secure_url(p.issuer):
            raise ValueError(f"{where}: issuer must be https:// (http:// on loopback only)")
        issuer = p.issuer.rstrip("/")
        if issuer in issuers:
            raise ValueError(f"{where}: issuer {issuer} is listed twice")
        if p.name in names:
            raise ValueError(f"{where}: another provider has the name {p.name!r}")
        issuers.add(issuer)
        names.add(p.name)
        for value, role in p.roles.items():
            if role not in ROLES:
                raise ValueError(f"{where}: {value!r} → {role!r}: a role among {', '.join(ROLES)}")
        if "entity" in p.roles.values() and not p.entity_claim:
            raise ValueError(f"{where}: a group mapped to the entity role needs entity_claim")
        if weak_secret(p.client_secret.get_secret_value()):  # the message never shows it
            raise ValueError(f"{where}: client_secret is a well-known default or too short")
