"""Report rows into findings: one ECS event (`event.kind: event`) per row, with the
host it names (an address, or a host name or URL) and its classification.

Built for millions of rows: the column plan is compiled once per file, a row is a
list of strings and becomes one dict and one small slotted record."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import itertools
import re
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from incidents.reports.formats import SEVERITIES, Format, FormatError, recognise

MAX_FIELD = 1 << 20  # a Shadowserver cell can be long (certificates, banners)
_IP_PORT = re.compile(r"^\[?([0-9a-fA-F:.]+?)\]?:(\d{1,5})$")
csv.field_size_limit(MAX_FIELD)


@dataclass(slots=True)
class Finding:
    key: str  # what de-duplication compares (kind, host, port, threat)
    kind: str
    at: datetime
    severity: str
    ip: str | None  # the constituency's host, by address
    name: str | None  # … or by name (host name, URL's host)
    port: int | None
    value: str  # what the entity reads in its list: the URL, or the address
    detail: str
    doc: dict[str, Any]
    rsit: tuple[str, str]
    family: str
    entity_id: str | None = None
    entity_name: str = ""


def open_text(path: Path) -> IO[str]:
    raw = path.read_bytes() if path.suffix.lower() == ".gz" else None
    if raw is not None:
        return io.StringIO(gzip.decompress(raw).decode("utf-8-sig", errors="replace"))
    return path.open(encoding="utf-8-sig", errors="replace", newline="")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in next(csv.reader([line], skipinitialspace=True), [])]


def split_head(lines: Iterator[str]) -> tuple[list[str], list[str] | None, Iterator[str]]:
    """(last commented header line's cells, first data line's cells, the rest)."""
    commented: list[str] = []
    for line in lines:
        s = line.strip()
        if not s:
            continue
        if s.startswith("#"):
            cells = _cells(s.lstrip("#").strip())
            if len(cells) > 1:
                commented = cells
            continue
        return commented, _cells(s), lines
    return commented, None, lines


def detect(
    filename: str, fh: IO[str], fmt: Format | None
) -> tuple[Format, list[str], Iterator[list[str]]]:
    """The file's format, its header and its data rows."""
    commented, first, rest = split_head(iter(fh))
    if fmt is None:
        fmt = recognise(filename, (first or []) + commented)
    low = [c.lower() for c in first or []]
    wanted = {c for c in (fmt.host, *fmt.names) if c}
    data: Iterator[list[str]]
    if first is not None and not fmt.headerless and wanted & set(low):
        header, data = low, csv.reader(rest, skipinitialspace=True)
    elif fmt.header:
        header = [
            h.lower()
            for h in (commented if wanted & {c.lower() for c in commented} else fmt.header)
        ]
        head = [first] if first is not None else []
        data = _chain(head, csv.reader(rest, skipinitialspace=True))
    else:
        raise FormatError(
            f"{filename}: la cabecera no tiene la columna del equipo ({', '.join(sorted(wanted))})"
        )
    return fmt, header, data


def _chain(first: list[list[str]], rest: Iterator[list[str]]) -> Iterator[list[str]]:
    """The first rows, then the rest (comment rows are left out by the builder)."""
    yield from first
    yield from rest


def _int(v: str) -> int | str:
    try:
        return int(v)
    except ValueError:
        return v


def _tags(v: str) -> list[str]:
    if "," not in v and ";" not in v:
        return [v.strip()]
    return [t.strip() for t in re.split(r"[;,]", v) if t.strip()]


_CONVERT = {"port": _int, "number": _int, "tags": _tags, "confidence": _int}


def _time(v: str, cache: dict[str, tuple[datetime, str]]) -> tuple[datetime, str] | None:
    """A report's timestamp (UTC when it names no zone) and its ISO text; reports
    repeat timestamps, so both are kept by the text they came from."""
    t = cache.get(v)
    if t is None:
        try:
            at = datetime.fromisoformat(v.strip().replace(" UTC", "").replace("Z", "+00:00"))
        except ValueError:
            return None
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        t = (at, at.isoformat())
        if len(cache) < 100_000:
            cache[v] = t
    return t


def _compile(plan: list[tuple[int, tuple[str, ...], Any]]) -> Callable[[list[str]], dict[str, Any]]:
    """A function building a row's nested ECS dict with no empty branches, generated
    once per file: a loop walking paths per cell costs several times more."""
    tree: dict[str, Any] = {}
    env: dict[str, Any] = {}
    for i, path, conv in plan:
        node = tree
        for p in path[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                break
        else:
            if path[-1] not in node:  # the first column mapped to a field wins
                node[path[-1]] = (i, conv)
    lines = ["def build(row):"]
    counter = itertools.count()

    def emit(node: dict[str, Any], target: str, indent: str) -> None:
        for key, val in node.items():
            if isinstance(val, dict):
                sub = f"d{next(counter)}"
                lines.append(f"{indent}{sub} = {{}}")
                emit(val, sub, indent)
                lines.append(f"{indent}if {sub}: {target}[{key!r}] = {sub}")
            else:
                i, conv = val
                lines.append(f"{indent}v = row[{i}]")
                if conv is None:
                    lines.append(f"{indent}if v: {target}[{key!r}] = v")
                else:
                    name = f"c{next(counter)}"
                    env[name] = conv
                    lines.append(f"{indent}if v: {target}[{key!r}] = {name}(v)")

    lines.append("    doc = {}")
    emit(tree, "doc", "    ")
    lines.append("    return doc")
    exec("\n".join(lines), env)
    fn: Callable[[list[str]], dict[str, Any]] = env["build"]
    return fn


def _host_of(value: str) -> tuple[str | None, str | None, int | None]:
    """(address, name, port) that a host cell names: an address, address:port, a host
    name or a URL."""
    v = value.strip()
    if not v:
        return None, None, None
    if "/" in v or v.lower().startswith(("http:", "https:")):
        try:
            parts = urlsplit(v if "://" in v else "http://" + v)
            host, port = parts.hostname, parts.port
        except ValueError:
            return None, None, None
        if not host:
            return None, None, None
        return (host, None, port) if _is_ip(host) else (None, host.rstrip("."), port)
    m = _IP_PORT.match(v)
    if m and _is_ip(m.group(1)):
        return m.group(1), None, int(m.group(2))
    if _is_ip(v):
        return v, None, None
    if "." in v and " " not in v:
        return None, v.lower().rstrip("."), None
    return None, None, None


def _is_ip(v: str) -> bool:
    """An IPv4 or IPv6 address (inet_pton: a C call, a million rows a second)."""
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in v else socket.AF_INET, v)
    except (OSError, ValueError):
        return False
    return True


class Builder:
    """One format's rows into findings; counts what it had to leave."""

    def __init__(self, fmt: Format, header: list[str], day: str | None = None) -> None:
        self.fmt = fmt
        self.rejected = 0
        self.ignored = 0  # rows that name no host (a file hash in ThreatFox, say)
        self.first_problem = ""
        self._times: dict[str, tuple[datetime, str]] = {}
        self._day = datetime.fromisoformat(day).replace(tzinfo=UTC) if day else None
        idx = {h: i for i, h in enumerate(header)}
        self._width = len(header)
        self._plan: list[tuple[int, tuple[str, ...], Any]] = []
        self._labels: list[tuple[int, str]] = []
        mapped = set()
        for col, ecs in fmt.columns.items():
            if col in idx and ecs != "@timestamp":
                path = tuple(ecs.split("."))
                self._plan.append((idx[col], path, _CONVERT.get(path[-1])))
                mapped.add(col)
        for col, i in idx.items():
            if col not in mapped and col not in fmt.columns:
                self._labels.append((i, col))
        ts_col = next((c for c, e in fmt.columns.items() if e == "@timestamp"), None)
        self._ts = idx.get(ts_col) if ts_col else None
        self._host = idx.get(fmt.host) if fmt.host else None
        self._names = [idx[c] for c in fmt.names if c in idx]
        self._sev = idx.get("severity")
        self._variant = idx.get(fmt.variant_column) if fmt.variant_column else None
        self._doc = _compile(self._plan)
        self._detail = [
            idx[c] for c in ("tag", "infection", "threat", "threat_type", "malware") if c in idx
        ]
        self._base = {
            "kind": "event",
            "dataset": f"{fmt.provider}.{fmt.kind}",
            "provider": fmt.provider,
            "module": "reports",
        }

    def _reject(self, why: str) -> None:
        self.rejected += 1
        self.first_problem = self.first_problem or why

    def build(self, rows: Iterable[list[str]], now: datetime) -> Iterator[Finding]:
        fmt = self.fmt
        for n, row in enumerate(rows, 1):
            if len(row) < self._width:
                if not any(row):
                    continue
                row = row + [""] * (self._width - len(row))
            if row[0][:1] == "#":  # trailers such as abuse.ch's "# END"
                continue
            if self._ts is not None:
                t = _time(row[self._ts], self._times)
                if t is None:
                    self._reject(f"fila {n}: fecha ilegible {row[self._ts]!r}")
                    continue
                at, iso = t
            else:
                at = self._day or now
                iso = at.isoformat()
            ip = name = None
            port: int | None = None
            if self._host is not None and row[self._host]:
                cell = row[self._host]
                if _is_ip(cell):  # the usual case: the column holds just the address
                    ip = cell
                else:
                    ip, name, port = _host_of(cell)
            for i in self._names:  # a name too: the address may be no one's, the name an entity's
                if row[i]:
                    a, nm, p = _host_of(row[i])
                    if nm:
                        name, port = nm, port or p
                        break
                    if ip is None and a:
                        ip, port = a, p
                        break
            if ip is None and name is None:
                self.ignored += 1
                continue
            rsit, severity, family = fmt.rsit, fmt.severity, fmt.family
            if self._variant is not None and row[self._variant] in fmt.variants:
                var = fmt.variants[row[self._variant]]
                rsit, severity, family = var.rsit, var.severity, var.family
            if self._sev is not None and row[self._sev].lower() in SEVERITIES:
                severity = row[self._sev].lower()
            doc = self._doc(row)
            doc["@timestamp"] = iso
            labels = {col: row[i] for i, col in self._labels if row[i]}
            if labels:
                doc.setdefault("labels", {}).update(labels)
            if port is None:  # the service's port: the scanned one, the C2's, the sinkhole's
                dp = doc.get("destination", {}).get("port")
                port = dp if isinstance(dp, int) else None
            threat = doc.get("threat", {}).get("software", {}).get("name", "")
            detail = " ".join(row[i] for i in self._detail if row[i])[:200]
            value = next((row[i] for i in self._names if "://" in row[i]), "") or ip or name or ""
            key = hashlib.blake2b(
                f"{fmt.kind}|{ip}|{name}|{port}|{threat}|{value}".encode(), digest_size=16
            ).hexdigest()
            doc["event"] = {
                **self._base,
                **doc.get("event", {}),
                "id": key,
                "severity": SEVERITIES.index(severity),
                "severity_name": severity,
            }
            doc["host"] = {"ip": ip} if ip else {"hostname": name}
            doc["vigia"] = {
                "rsit": {"class": rsit[0], "type": rsit[1]},
                "report": fmt.kind,
                "family": family,
            }
            yield Finding(
                key, fmt.kind, at, severity, ip, name, port, value, detail, doc, rsit, family
            )


@dataclass
class Opened:
    """A report file, its format recognised and its header read, ready to stream."""

    path: Path
    fmt: Format
    builder: Builder
    rows: Iterator[list[str]]
    fh: IO[str]

    def findings(self, now: datetime) -> Iterator[Finding]:
        try:
            yield from self.builder.build(self.rows, now)
        except csv.Error as exc:
            raise FormatError(f"{self.path.name}: CSV ilegible ({exc})") from None
        finally:
            self.fh.close()


def open_report(path: Path, fmt: Format | None = None) -> Opened:
    """Recognise a report file (or take the given format) and read its header; a file
    no format takes raises FormatError naming it."""
    from incidents.reports.formats import report_day

    try:
        fh = open_text(path)
    except (OSError, EOFError, ValueError) as exc:
        raise FormatError(f"{path.name}: no se puede leer ({exc})") from None
    try:
        name = path.name[:-3] if path.name.lower().endswith(".gz") else path.name
        fmt, header, rows = detect(name, fh, fmt)
    except (FormatError, csv.Error) as exc:
        fh.close()
        raise FormatError(
            str(exc) if isinstance(exc, FormatError) else f"{path.name}: {exc}"
        ) from None
    except UnicodeDecodeError:
        fh.close()
        raise FormatError(f"{path.name}: no es texto") from None
    return Opened(path, fmt, Builder(fmt, header, report_day(name)), rows, fh)
