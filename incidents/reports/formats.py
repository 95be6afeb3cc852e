"""Report formats, kept as data: Shadowserver's report types (one format each, the
type from the file name), abuse.ch feeds, PhishTank/OpenPhish URL lists and generic
CSV column mappings. A format says which columns become which ECS fields, which
column names the constituency's host, and how the report is classified."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

VOCAB = Path(__file__).parent / "vocab"
SEVERITIES = ("info", "low", "medium", "high", "critical")
# Shadowserver names its files YYYY-MM-DD-TYPE-….csv (report_schema's report-filename.md).
SHADOWSERVER_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})-([a-z0-9_]+)-.+\.csv$", re.I)


class FormatError(ValueError):
    """A file no format takes, or a mapping that does not hold together."""


@dataclass(frozen=True)
class Variant:
    """A classification that a column's value overrides (ThreatFox's threat_type)."""

    rsit: tuple[str, str]
    severity: str
    family: str


@dataclass(frozen=True)
class Format:
    name: str  # what --format takes: "shadowserver:scan_rdp", "urlhaus", "generic:mine"
    kind: str  # the report kind incidents group by: "scan_rdp", "urlhaus"
    provider: str
    title: str
    rsit: tuple[str, str]
    severity: str
    family: str
    columns: dict[str, str]  # source column → ECS field
    host: str | None  # the column with the constituency's address
    names: tuple[str, ...] = ()  # columns naming it by host name or URL
    header: tuple[str, ...] = ()  # for files whose header is commented out or missing
    headerless: bool = False
    variants: dict[str, Variant] = field(default_factory=dict)
    variant_column: str = ""


@cache
def shadowserver() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VOCAB / "shadowserver.json").read_text())
    return data


@cache
def feeds() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VOCAB / "feeds.json").read_text())
    return data


@cache
def advice() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VOCAB / "advice_es.json").read_text())
    return data


def shadowserver_format(report: str) -> Format:
    spec = shadowserver()["reports"].get(report)
    if spec is None:
        raise FormatError(f"informe de Shadowserver desconocido: {report}")
    layout = shadowserver()["layouts"][spec["layout"]]
    return Format(
        name=f"shadowserver:{report}",
        kind=report,
        provider="shadowserver",
        title=spec["name"],
        rsit=(spec["rsit"][0], spec["rsit"][1]),
        severity=spec["severity"],
        family=spec["family"],
        columns=dict(layout["columns"]),
        host=layout["host"],
        names=(layout["name"], "http_host", "url"),
    )


def mapping_format(name: str, spec: dict[str, Any]) -> Format:
    """A format from a column mapping (the shipped feeds, or a generic CSV's file)."""
    try:
        severity = spec.get("severity", "medium")
        if severity not in SEVERITIES:
            raise FormatError(f"{name}: severity {severity!r}: one of {', '.join(SEVERITIES)}")
        by_value = spec.get("by_value") or {}
        variants = {
            value: Variant((v["rsit"][0], v["rsit"][1]), v["severity"], v["family"])
            for value, v in by_value.get("values", {}).items()
        }
        columns = {str(k): str(v) for k, v in spec["columns"].items()}
        host = spec.get("host")
        names = tuple(spec.get("names") or ())
        if not host and not names:
            raise FormatError(f"{name}: the mapping names no host column (host or names)")
        for col in (host, *names):
            if col and col not in columns:
                raise FormatError(f"{name}: host column {col!r} is not among the columns")
        return Format(
            name=name,
            kind=spec.get("kind", name.split(":")[-1]),
            provider=spec.get("provider", name),
            title=spec.get("title", name),
            rsit=(spec["rsit"][0], spec["rsit"][1]),
            severity=severity,
            family=spec.get("family", "informative"),
            columns=columns,
            host=host,
            names=names,
            header=tuple(spec.get("header") or ()),
            headerless=bool(spec.get("headerless")),
            variants=variants,
            variant_column=by_value.get("column", ""),
        )
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise FormatError(f"{name}: mapping incomplete ({exc})") from None


def feed_format(name: str) -> Format:
    spec = feeds()["formats"].get(name)
    if spec is None:
        raise FormatError(f"formato desconocido: {name}")
    return mapping_format(name, spec)


def generic_format(path: Path) -> Format:
    """A generic CSV's mapping file (JSON, the structure of vocab/feeds.json's formats)."""
    try:
        spec = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FormatError(f"{path.name}: mapping unreadable ({exc})") from None
    if not isinstance(spec, dict):
        raise FormatError(f"{path.name}: a mapping is a JSON object")
    return mapping_format(f"generic:{spec.get('kind', path.stem)}", spec)


def names() -> list[str]:
    """Every --format NAME Vigía knows."""
    return [*feeds()["formats"], *(f"shadowserver:{r}" for r in shadowserver()["reports"])]


def by_name(name: str) -> Format:
    if name.startswith("shadowserver:"):
        return shadowserver_format(name.partition(":")[2])
    if name in shadowserver()["reports"]:
        return shadowserver_format(name)
    return feed_format(name)


def report_day(filename: str) -> str | None:
    """The report date a Shadowserver file name carries (YYYY-MM-DD), if any."""
    m = SHADOWSERVER_NAME.match(filename)
    return m.group(1) if m else None


def recognise(filename: str, header: list[str]) -> Format:
    """The format of a file from its name and its header (or first commented line)."""
    m = SHADOWSERVER_NAME.match(filename)
    if m and m.group(2).lower() in shadowserver()["reports"]:
        return shadowserver_format(m.group(2).lower())
    cols = {h.strip().lower() for h in header}
    low = filename.lower()
    for name, spec in feeds()["formats"].items():
        match = spec["match"]
        if re.search(match["filename"], low) or (match["header"] and set(match["header"]) <= cols):
            return feed_format(name)
    if {"timestamp", "ip", "severity"} <= cols or {"timestamp", "src_ip", "severity"} <= cols:
        raise FormatError(
            f"{filename}: parece un informe de Shadowserver, pero el nombre no dice su tipo "
            "(AAAA-MM-DD-TIPO-….csv); use --format shadowserver:TIPO"
        )
    raise FormatError(f"{filename}: formato no reconocido; use --format NOMBRE o --mapping")
