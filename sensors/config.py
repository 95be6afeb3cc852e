"""Sensor configuration: a TOML file (`[sensor]` table) under command-line flags.

Checked whole at start-up: a bad value stops the sensor with one line
before it captures anything.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from sensors.spool import POLICIES


class ConfigError(Exception):
    """One line: which setting, and what is wrong with it."""


@dataclass(frozen=True)
class SensorSettings:
    server: str = ""
    token_file: Path | None = None
    observer: str = "vigia-sensor"
    spool_dir: Path = Path("vigia-spool")
    spool_max_bytes: int = 1 << 30
    spool_policy: str = "drop_oldest"
    batch_size: int = 500
    flush_s: float = 0.5  # seal a partial batch after this long (the p99 ≤ 1 s alert path)
    heartbeat_s: float = 30.0
    interface: str = ""
    bpf: str = ""
    snaplen: int = 65535
    promisc: bool = True
    metrics_port: int = 0  # 0: no Prometheus endpoint
    stream_depth: int = 1024 * 1024
    allow_networks: tuple[str, ...] = field(default_factory=tuple)
    allow_domains: tuple[str, ...] = field(default_factory=tuple)
    sample_one_in: int = 1  # keep one flow in N (1: all)
    deep: bool = False  # a tshark pass over capture files for DTLS and QUIC
    yara: bool = True  # scan extracted contents with the centre's YARA pack
    yara_timeout_s: int = 5  # per content; a scan that runs longer is counted and dropped
    # Files up to this many bytes also go to the centre for analysts (0: none, the default)
    send_files_max_bytes: int = 0
    files_spool_max_bytes: int = 256 << 20

    def token(self) -> str:
        if self.token_file is None:
            raise ConfigError("token_file: the sensor needs --token-file to ship")
        try:
            token = self.token_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"token_file: {self.token_file}: {exc.strerror}") from None
        if not token:
            raise ConfigError(f"token_file: {self.token_file} is empty")
        return token


def load(path: Path | None, **overrides: Any) -> SensorSettings:
    values: dict[str, Any] = {}
    if path is not None:
        try:
            with path.open("rb") as fh:
                doc = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        values.update(doc.get("sensor", doc))
    values.update({k: v for k, v in overrides.items() if v not in (None, (), [])})
    known = {f.name: f for f in fields(SensorSettings)}
    for key in values:
        if key not in known:
            raise ConfigError(f"{key}: unknown setting")
    s = SensorSettings()
    for key, value in values.items():
        default = getattr(s, key)
        try:
            if isinstance(default, bool):
                value = bool(value)
            elif isinstance(default, int):
                value = int(value)
            elif isinstance(default, float):
                value = float(value)
            elif isinstance(default, tuple):
                value = tuple(str(v) for v in value)
            elif key in ("token_file", "spool_dir"):
                value = Path(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: {value!r} is not a valid value") from None
        s = replace(s, **{key: value})
    _check(s)
    return s


def _check(s: SensorSettings) -> None:
    for url in s.server.split(",") if s.server else []:
        if not url.strip().startswith(("http://", "https://")):
            raise ConfigError(f"server: {url.strip()!r} must be an http:// or https:// URL")
    if s.spool_policy not in POLICIES:
        raise ConfigError(f"spool_policy: one of {', '.join(POLICIES)}")
    for name in (
        "spool_max_bytes",
        "batch_size",
        "snaplen",
        "stream_depth",
        "sample_one_in",
        "yara_timeout_s",
        "files_spool_max_bytes",
    ):
        if getattr(s, name) < 1:
            raise ConfigError(f"{name}: must be at least 1")
    if s.send_files_max_bytes < 0:
        raise ConfigError("send_files_max_bytes: 0 (off) or more")
    if not 0 <= s.metrics_port <= 65535:
        raise ConfigError("metrics_port: 0-65535")
    for net in s.allow_networks:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise ConfigError(f"allow_networks: {net!r} is not a network") from None
