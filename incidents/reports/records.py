"""Report rows into findings: one ECS event (`event.kind: event`) per row, with the
host it names (an address, or a host name or URL) and its classification.

Built for millions of rows: the columns are placed once per file and the ECS
document's builder generated for them (incidents/reports/ecs.py); a row is the csv
module's list of strings and becomes one tuple, its document already JSON text."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from incidents.reports.ecs import CONVERT, as_int, compile_doc
from incidents.reports.formats import SEVERITIES, Format, FormatError, recognise

MAX_FIELD = 1 << 20  # a Shadowserver cell can be long (certificates, banners)
_IP_PORT = re.compile(r"^\[?([0-9a-fA-F:.]+?)\]?:(\d{1,5})$")
csv.field_size_limit(MAX_FIELD)
RANK = {s: i for i, s in enumerate(SEVERITIES)}


# A finding as the intake takes it: a plain tuple (no object, no dict per row):
#   (key, at, day, severity, ip, name, port, value, detail, doc, cls)
# key: what de-duplication compares (kind, host, port, threat), hex; at: when seen
# (UTC) and day its date; ip or name: the constituency's host, by address or by name
# (host name, URL's host); value: what the entity reads in its list (the URL, or the
# address); doc: the ECS event's JSON text (a dict when the mapping fills
# `organization`); cls: the index of its (RSIT class/type, family) in Builder.classes.
Finding = tuple[str, datetime, str, str, str | None, str | None, int | None, str, str, Any, int]
Stamp = tuple[datetime, str, str]  # (at, ISO text, day)
Class = tuple[tuple[str, str], str]  # (RSIT class and type, family)
# A host cell that is plainly a name: no space, slash or colon, not only digits and
# dots (those are addresses, URLs or address:port), with a dot somewhere.
_PLAIN_NAME = re.compile(r"[^\s/:]*[^\s/:\d.][^\s/:]*")


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


def _time(v: str, cache: dict[str, Stamp]) -> Stamp | None:
    """A report's timestamp (UTC when it names no zone), its ISO text and its day;
    reports repeat timestamps, so all three are kept by the text they came from."""
    t = cache.get(v)
    if t is None:
        try:
            at = datetime.fromisoformat(v.strip().replace(" UTC", "").replace("Z", "+00:00"))
        except ValueError:
            return None
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        t = (at, at.isoformat(), at.date().isoformat())
        if len(cache) < 100_000:
            cache[v] = t
    return t


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
    """One format's rows into findings; counts what it had to leave. The columns are
    placed once per file (the format's mapping against the header); each row is then
    read by position."""

    def __init__(self, fmt: Format, header: list[str], day: str | None = None) -> None:
        self.fmt = fmt
        self.kind = fmt.kind
        self.rejected = 0
        self.ignored = 0  # rows that name no host (a file hash in ThreatFox, say)
        self.first_problem = ""
        self._times: dict[str, Stamp] = {}
        self._day = datetime.fromisoformat(day).replace(tzinfo=UTC) if day else None
        idx = {h: i for i, h in enumerate(header)}
        self._width = len(header)
        plan: list[tuple[int, tuple[str, ...], Any]] = []
        labels: list[tuple[int, str]] = []
        mapped = set()
        for col, field in fmt.columns.items():
            if col in idx and field != "@timestamp":
                path = tuple(field.split("."))
                plan.append((idx[col], path, CONVERT.get(path[-1])))
                mapped.add(col)
        for col, i in idx.items():
            if col not in mapped and col not in fmt.columns:
                labels.append((i, col))
        ts_col = next((c for c, e in fmt.columns.items() if e == "@timestamp"), None)
        self._ts = idx.get(ts_col) if ts_col else None
        self._host = idx.get(fmt.host) if fmt.host else None
        self._names = [idx[c] for c in fmt.names if c in idx]
        self._sev = idx.get("severity")
        self._variant = idx.get(fmt.variant_column) if fmt.variant_column else None
        self._detail = [
            idx[c] for c in ("tag", "infection", "threat", "threat_type", "malware") if c in idx
        ]
        base = {
            "kind": "event",
            "dataset": f"{fmt.provider}.{fmt.kind}",
            "provider": fmt.provider,
            "module": "reports",
        }
        self._doc = compile_doc(plan, labels, base)
        # The classifications a row can have: the format's own, then its variants'.
        self.classes: list[Class] = [(fmt.rsit, fmt.family)]
        self._variants: dict[str, tuple[int, str]] = {}  # value → (class, severity)
        for value, var in fmt.variants.items():
            self._variants[value] = (len(self.classes), var.severity)
            self.classes.append((var.rsit, var.family))
        # The `vigia` part of the document, one shared dict per class.
        self._vigia = [
            {"rsit": {"class": r[0], "type": r[1]}, "report": fmt.kind, "family": fam}
            for r, fam in self.classes
        ]

    def _reject(self, why: str) -> None:
        self.rejected += 1
        self.first_problem = self.first_problem or why

    def build(self, rows: Iterable[list[str]], now: datetime) -> Iterator[Finding]:
        fmt, kind, width = self.fmt, self.kind, self._width
        ts, times, host_col, names = self._ts, self._times, self._host, self._names
        sev_col, variant_col, variants = self._sev, self._variant, self._variants
        detail_cols, vigia = self._detail, self._vigia
        doc_of, port_leaf, threat_leaf = self._doc.build, self._doc.port, self._doc.threat
        one_detail = detail_cols[0] if len(detail_cols) == 1 else None
        default_sev = fmt.severity
        blake2b, is_ip, host_of, plain = hashlib.blake2b, _is_ip, _host_of, _PLAIN_NAME.fullmatch
        if ts is None:
            at0 = self._day or now
            stamp0: Stamp = (at0, at0.isoformat(), at0.date().isoformat())
        for n, row in enumerate(rows, 1):
            if len(row) < width:
                if not any(row):
                    continue
                row = row + [""] * (width - len(row))
            if row[0][:1] == "#":  # trailers such as abuse.ch's "# END"
                continue
            if ts is not None:
                t = times.get(row[ts]) or _time(row[ts], times)
                if t is None:
                    self._reject(f"fila {n}: fecha ilegible {row[ts]!r}")
                    continue
            else:
                t = stamp0
            ip = name = None
            port: int | None = None
            if host_col is not None and row[host_col]:
                cell = row[host_col]
                if is_ip(cell):  # the usual case: the column holds just the address
                    ip = cell
                else:
                    ip, name, port = host_of(cell)
            for i in names:  # a name too: the address may be no one's, the name an entity's
                cell = row[i]
                if cell:
                    if "." in cell and plain(cell):  # what _host_of makes of a plain name
                        name, port = cell.lower().rstrip("."), port or None
                        break
                    a, nm, p = host_of(cell)
                    if nm:
                        name, port = nm, port or p
                        break
                    if ip is None and a:
                        ip, port = a, p
                        break
            if ip is None and name is None:
                self.ignored += 1
                continue
            cls, severity = 0, default_sev
            if variant_col is not None and row[variant_col] in variants:
                cls, severity = variants[row[variant_col]]
            if sev_col is not None:
                s = row[sev_col].lower()
                if s in RANK:
                    severity = s
            if port is None and port_leaf is not None:
                v = row[port_leaf[0]]
                if v:  # the service's port: the scanned one, the C2's, the sinkhole's
                    pv = as_int(v)
                    port = pv if isinstance(pv, int) else None
            threat: Any = ""
            if threat_leaf is not None and row[threat_leaf[0]]:
                conv = threat_leaf[1]
                threat = conv(row[threat_leaf[0]]) if conv else row[threat_leaf[0]]
            if one_detail is not None:
                detail = row[one_detail][:200]
            else:
                detail = " ".join([row[i] for i in detail_cols if row[i]])[:200]
            value = ""
            for i in names:
                if "://" in row[i]:
                    value = row[i]
                    break
            value = value or ip or name or ""
            key = blake2b(
                f"{kind}|{ip}|{name}|{port}|{threat}|{value}".encode(), digest_size=16
            ).hexdigest()
            doc = doc_of(
                row,
                t[1],
                key,
                RANK[severity],
                severity,
                {"ip": ip} if ip else {"hostname": name},  # type: ignore[dict-item]
                vigia[cls],
            )
            yield (key, t[0], t[2], severity, ip, name, port, value, detail, doc, cls)


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
