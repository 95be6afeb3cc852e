"""Settings: `VIGIA_*` environment variables over an optional TOML config file.

Fail fast at start-up: a bad value or a default secret stops the process with
one line, before anything listens or writes (the checks: core.settings_checks).
"""

from __future__ import annotations

import os
import secrets
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from core import settings_checks as checks
from core.settings_checks import DEFAULT_SLA_HOURS, MIN_SECRET_LENGTH
from core.sso_config import OidcProvider


class SettingsError(Exception):
    """A configuration problem, reported as one line."""


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the file named by `VIGIA_CONFIG` (a flat TOML table of settings)."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self._data: dict[str, Any] = {}
        if path is not None:
            try:
                with path.open("rb") as fh:
                    raw = tomllib.load(fh)
            except OSError as exc:
                raise SettingsError(f"{path}: cannot read config file: {exc.strerror}") from exc
            except tomllib.TOMLDecodeError as exc:
                raise SettingsError(f"{path}: invalid TOML: {exc}") from exc
            self._data = raw.get("vigia", raw)

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in self.settings_cls.model_fields}


class Settings(BaseSettings):
    """Everything the centre needs to start. Built once by the composition root."""

    model_config = SettingsConfigDict(env_prefix="VIGIA_", extra="ignore")

    data_dir: Path = Field(default=Path("vigia-data"), description="where the embedded store lives")
    database_url: str = Field(
        default="", description="SQLAlchemy URL; SQLite under data_dir if empty"
    )
    secret_key: str = Field(default="", description="pepper for token hashes; generated if empty")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    dedup_window_s: int = Field(
        default=3600, ge=1, description="alerts fold hits within this window"
    )
    observer_name: str = "vigia"
    misp_url: str = Field(default="", description="MISP server to sync from and sight to")
    misp_key_file: Path | None = Field(default=None, description="file holding the MISP key")
    misp_verify_tls: bool = True
    misp_sync_minutes: int = Field(default=15, ge=1)
    feeds: list[str] = Field(
        default_factory=list, description="indicator feeds: paths or http(s) URLs, refreshed"
    )
    feed_minutes: int = Field(default=60, ge=1)
    warninglists: bool = Field(default=True, description="keep MISP warninglist values out")
    retro_hunt_days: int = Field(default=30, ge=0, description="new indicators hunt this far back")
    max_batch: int = Field(default=10_000, ge=1, description="observations per ingest batch")
    yara_dir: Path | None = Field(
        default=None, description="extra YARA rules, hot-swapped; <data_dir>/yara if unset"
    )
    cache_dir: Path | None = Field(
        default=None,
        description="compiled warninglists, rebuilt when missing; <data_dir>/cache if unset",
    )
    elasticsearch_url: str = Field(
        default="", description="mirror observations and alerts to this cluster"
    )
    es_retention_days: int = Field(default=30, ge=1)
    log_format: Literal["text", "json"] = Field(default="text", description="json for shippers")
    max_file_bytes: int = Field(default=32 * 1024 * 1024, ge=1, description="files sent to scan")
    # Incidents: grouping, SLAs (hours per priority), notification of entities.
    incident_window_h: int = Field(default=24, ge=1, description="alerts group within this")
    incident_min_severity: int = Field(
        default=50, ge=0, le=101, description="an ungrouped alert this severe opens an incident"
    )
    sla_hours: dict[str, dict[str, float]] = Field(default_factory=lambda: dict(DEFAULT_SLA_HOURS))
    notify_on_triage: bool = Field(default=True, description="notify entities when triaged")
    public_url: str = Field(default="", description="the console's address, for links in mail")
    smtp_host: str = ""
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = "cert@localhost"
    smtp_starttls: bool = False
    smtp_user: str = ""
    smtp_password_file: Path | None = None
    smtp_plain_auth: bool = Field(
        default=False,
        validate_default=True,
        description="allow SMTP AUTH without STARTTLS (a relay on loopback only)",
    )
    # Outgoing webhooks (docs/security.md, SSRF): https only, public addresses only,
    # unless an admin names the exceptions here.
    webhook_allow_http: bool = Field(default=False, description="allow http:// webhook targets")
    webhook_allow_networks: list[str] = Field(
        default_factory=list,
        description="CIDRs a webhook may reach though loopback, private or link-local",
    )
    cert_email: str = Field(
        default="", description="where the CERT hears of entity changes; smtp_from if empty"
    )

    # External reports in (Shadowserver, abuse.ch, phishing lists, generic CSV).
    reports_dir: Path | None = Field(
        default=None,
        description="folder watched for report files (moved to procesados/ or rechazados/)",
    )
    reports_urls: list[str] = Field(
        default_factory=list, description="https URLs of report feeds, polled"
    )
    reports_minutes: int = Field(default=15, ge=1, description="how often reports are polled")
    reports_imap_host: str = Field(default="", description="IMAP mailbox receiving reports")
    reports_imap_port: int = Field(default=993, ge=1, le=65535)
    reports_imap_tls: bool = Field(default=True, description="IMAP over TLS (port 993)")
    reports_imap_user: str = ""
    reports_imap_password_file: Path | None = None
    reports_imap_mailbox: str = "INBOX"
    reports_dedup_window_h: int = Field(
        default=24, ge=1, description="the same finding within this is taken once"
    )
    reports_ncciss: dict[str, int] = Field(
        default_factory=dict,
        description="finding severity → NCISS level (priority); critical 4, high 3 by default",
    )

    # Console sessions and the brute-force throttle (docs/security.md).
    console_idle_minutes: int = Field(default=30, ge=1, description="a quiet session ends")
    console_session_hours: int = Field(default=12, ge=1, description="any session ends")
    trusted_proxies: str = Field(
        default="", description="addresses whose X-Forwarded-Proto/-For are believed; '*' = all"
    )
    auth_fail_limit: int = Field(default=20, ge=1, description="failed logins before a lockout")
    auth_fail_window_s: int = Field(default=600, ge=1, description="failures count this long")
    auth_lockout_s: int = Field(default=900, ge=1, description="how long a lockout lasts")

    # Single sign-on through an OpenID Connect provider (api/oidc.py, docs/security.md).
    oidc_issuer: str = Field(default="", description="the provider's issuer URL; empty: no SSO")
    oidc_client_id: str = Field(default="", description="Vigía's client id at the provider")
    oidc_client_secret: SecretStr = Field(
        default=SecretStr(""), description="the client's secret; empty: a public PKCE client"
    )
    oidc_audience: str = Field(
        default="", description="the `aud` API bearer JWTs must carry; the client id if empty"
    )
    oidc_name: str = Field(default="OpenID Connect", description="the provider, on the button")
    oidc_scopes: str = Field(default="openid profile email", description="asked at login")
    oidc_role_claim: str = Field(default="groups", description="claim (dotted path) of groups")
    oidc_roles: dict[str, str] = Field(
        default_factory=dict, description='claim value → role, e.g. {"cert-analistas": "analyst"}'
    )
    oidc_entity_claim: str = Field(default="", description="claim naming an entity user's entity")
    oidc_jwks_max_age_s: int = Field(
        default=300, ge=1, description="the provider's keys are fetched again after this"
    )
    oidc_providers: list[OidcProvider] = Field(
        default_factory=list,
        description="several providers, each with its name, issuer, client and claim mapping",
    )

    # Certification policy: what a decision requires, how long a certificate lasts.
    cert_min_score: float = Field(default=0.8, ge=0, le=1)
    cert_conditional_min_score: float = Field(default=0.6, ge=0, le=1)
    cert_validity_days: int = Field(default=365, ge=1)
    cert_conditional_validity_days: int = Field(default=180, ge=1)
    cert_incident_block_days: int = Field(
        default=7, ge=0, description="an open P1/P2 incident older than this blocks issuance"
    )
    cert_reminder_days: list[int] = Field(default_factory=lambda: [60, 30, 7])
    evidence_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    evidence_types: list[str] = Field(
        default_factory=lambda: [
            "application/pdf",
            "image/png",
            "image/jpeg",
            "text/plain",
            "text/csv",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/vnd.oasis.opendocument.text",
            "application/vnd.oasis.opendocument.spreadsheet",
        ]
    )

    # The checks themselves are core.settings_checks'; each names its setting.
    @field_validator("sla_hours")
    @classmethod
    def _check_sla(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        return checks.sla_hours(value)

    @field_validator("reports_ncciss")
    @classmethod
    def _check_report_levels(cls, value: dict[str, int]) -> dict[str, int]:
        return checks.report_levels(value)

    @field_validator("smtp_plain_auth")
    @classmethod
    def _no_auth_in_clear(cls, value: bool, info: ValidationInfo) -> bool:
        return checks.smtp_auth_not_in_clear(value, info.data)

    @field_validator("webhook_allow_networks")
    @classmethod
    def _check_networks(cls, value: list[str]) -> list[str]:
        return checks.networks(value)

    @field_validator("oidc_roles")
    @classmethod
    def _check_oidc_roles(cls, value: dict[str, str]) -> dict[str, str]:
        return checks.oidc_roles(value)

    @field_validator("oidc_client_secret")
    @classmethod
    def _refuse_weak_client_secret(cls, value: SecretStr) -> SecretStr:
        checks.client_secret(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _whole_oidc_configuration(self) -> Settings:
        checks.whole_sso(self)
        return self

    @field_validator("secret_key")
    @classmethod
    def _refuse_default_secret(cls, value: str) -> str:
        return checks.secret_key(value)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config = os.environ.get("VIGIA_CONFIG")
        toml = _TomlSource(settings_cls, Path(config) if config else None)
        return (init_settings, env_settings, toml)

    def sso_providers(self) -> list[tuple[OidcProvider, str]]:
        """The single sign-on providers, each with the setting its roles come from (for
        the reason a refused person reads); the older single-provider settings as one."""
        if self.oidc_providers:
            return [
                (p, f"VIGIA_OIDC_PROVIDERS[{i}].roles") for i, p in enumerate(self.oidc_providers)
            ]
        if not self.oidc_issuer:
            return []
        one = OidcProvider(
            name=self.oidc_name,
            issuer=self.oidc_issuer,
            client_id=self.oidc_client_id,
            client_secret=self.oidc_client_secret,
            audience=self.oidc_audience,
            scopes=self.oidc_scopes,
            role_claim=self.oidc_role_claim,
            roles=self.oidc_roles,
            entity_claim=self.oidc_entity_claim,
        )
        return [(one, "VIGIA_OIDC_ROLES")]

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'vigia.db').resolve()}"


def load_settings(**overrides: Any) -> Settings:
    """Build settings or raise SettingsError with one readable line."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        if not err["loc"]:  # a check across settings: its message names them
            raise SettingsError(err["msg"].removeprefix("Value error, ")) from None
        head, *rest = err["loc"]
        # A nested value (a provider of VIGIA_OIDC_PROVIDERS) as VIGIA_OIDC_PROVIDERS[1].roles
        inner = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in rest)
        raise SettingsError(f"VIGIA_{str(head).upper()}{inner}: {err['msg']}") from None
    return settings


def ensure_secret(settings: Settings) -> str:
    """The configured secret, or one generated once and kept (0600) in the data dir.

    The embedded default must work with no set-up, yet never with a shared
    default value: each installation gets its own random secret.
    """
    if settings.secret_key:
        return settings.secret_key
    path = settings.data_dir / "secret_key"
    if path.exists():
        value = path.read_text().strip()
        if len(value) < MIN_SECRET_LENGTH:
            raise SettingsError(f"{path}: secret is too short; delete it to regenerate")
        return value
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value
