"""The checks settings must pass before the centre starts: secrets, SLA hours, report
levels, SMTP in clear, webhook networks and single sign-on. Each raises ValueError
with one line (core.settings makes it `VIGIA_NAME: reason`)."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from core import sso_config

if TYPE_CHECKING:
    from core.settings import Settings

# Values seen in tutorials and sample configs; a deployment that uses one is
# as good as unauthenticated.
KNOWN_DEFAULT_SECRETS = frozenset(
    {"changeme", "change-me", "changethis", "secret", "password", "default", "vigia", "admin"}
)
MIN_SECRET_LENGTH = 32

# Hours from an incident's opening (or the entity's notification, for
# entity_reply) to each due time, by priority. P1 is the national-emergency end.
SLA_CLOCKS = ("acknowledge", "contain", "resolve", "entity_reply")
DEFAULT_SLA_HOURS: dict[str, dict[str, float]] = {
    "P1": {"acknowledge": 1, "contain": 24, "resolve": 72, "entity_reply": 4},
    "P2": {"acknowledge": 4, "contain": 72, "resolve": 168, "entity_reply": 24},
    "P3": {"acknowledge": 24, "contain": 168, "resolve": 720, "entity_reply": 72},
    "P4": {"acknowledge": 72, "contain": 720, "resolve": 2160, "entity_reply": 168},
}


def sla_hours(value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """The given hours over the defaults, each priority and clock known, each above 0."""
    merged = {p: dict(DEFAULT_SLA_HOURS[p]) for p in DEFAULT_SLA_HOURS}
    for prio, clocks in value.items():
        if prio not in DEFAULT_SLA_HOURS:
            raise ValueError(f"priority {prio!r}: one of {', '.join(DEFAULT_SLA_HOURS)}")
        for clock, hours in clocks.items():
            if clock not in SLA_CLOCKS:
                raise ValueError(f"{prio}.{clock}: one of {', '.join(SLA_CLOCKS)}")
            if not hours > 0:
                raise ValueError(f"{prio}.{clock}: hours must be above 0")
            merged[prio][clock] = float(hours)
    return merged


def report_levels(value: dict[str, int]) -> dict[str, int]:
    severities = ("info", "low", "medium", "high", "critical")
    for severity, level in value.items():
        if severity not in severities:
            raise ValueError(f"{severity!r}: one of {', '.join(severities)}")
        if not 0 <= int(level) <= 5:
            raise ValueError(f"{severity}: an NCISS level from 0 to 5")
    return value


def smtp_auth_not_in_clear(value: bool, given: dict[str, Any]) -> bool:
    """`given`: the settings validated so far (SMTP user, password file, STARTTLS)."""
    # The password would cross the network in clear: refuse at start-up.
    creds = given.get("smtp_user") or given.get("smtp_password_file")
    if creds and not given.get("smtp_starttls") and not value:
        raise ValueError(
            "SMTP credentials need VIGIA_SMTP_STARTTLS=true "
            "(or this set to true, for a relay on loopback only)"
        )
    return value


def networks(value: list[str]) -> list[str]:
    try:
        return [str(ipaddress.ip_network(v.strip(), strict=False)) for v in value]
    except ValueError as exc:
        raise ValueError(str(exc)) from None


def oidc_roles(value: dict[str, str]) -> dict[str, str]:
    allowed = ("admin", "analyst", "auditor", "entity")
    for claim, role in value.items():
        if role not in allowed:
            raise ValueError(f"{claim!r} → {role!r}: a role among {', '.join(allowed)}")
    return value


def weak_secret(held: str) -> bool:
    return bool(held) and (held.lower() in KNOWN_DEFAULT_SECRETS or len(held) < MIN_SECRET_LENGTH)


def client_secret(held: str) -> None:
    # Checked like the installation's secret; the message never shows the value.
    if weak_secret(held):
        raise ValueError(f"is a well-known default or shorter than {MIN_SECRET_LENGTH} characters")


def whole_sso(s: Settings) -> None:
    # Half a single sign-on set-up fails at start, not at the first login.
    if s.oidc_providers:
        if s.oidc_issuer or s.oidc_client_id or s.oidc_roles:
            raise ValueError(
                "single sign-on is set twice: VIGIA_OIDC_PROVIDERS, or VIGIA_OIDC_ISSUER "
                "and the rest for one provider, not both"
            )
        sso_config.check(s.oidc_providers, weak_secret)
        return
    oidc = {
        "VIGIA_OIDC_ISSUER": bool(s.oidc_issuer),
        "VIGIA_OIDC_CLIENT_ID": bool(s.oidc_client_id),
        "VIGIA_OIDC_ROLES": bool(s.oidc_roles),
    }
    if any(oidc.values()) or s.oidc_client_secret.get_secret_value():
        missing = [name for name, given in oidc.items() if not given]
        if missing:
            raise ValueError(f"single sign-on needs {', '.join(missing)} too")
        if not sso_config.secure_url(s.oidc_issuer):
            raise ValueError("VIGIA_OIDC_ISSUER must be https:// (http:// on loopback only)")
        if "entity" in s.oidc_roles.values() and not s.oidc_entity_claim:
            raise ValueError("a group mapped to the entity role needs VIGIA_OIDC_ENTITY_CLAIM")


def secret_key(value: str) -> str:
    if value == "":
        return value
    if value.lower() in KNOWN_DEFAULT_SECRETS:
        raise ValueError("is a well-known default; generate one with `openssl rand -hex 32`")
    if len(value) < MIN_SECRET_LENGTH:
        raise ValueError(f"must be at least {MIN_SECRET_LENGTH} characters")
    return value
