"""Indicator files, recognised by their content, each read by a small loader.

A file with a bad record is refused whole, with the file and position named:
half a feed is worse than the last good one.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rules.indicator import Indicator


class IndicatorFileError(Exception):
    """One line for the user: file, position and reason."""

    def __init__(self, path: str | Path, reason: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")
        self.path, self.line, self.reason = str(path), line, reason


@dataclass
class LoadResult:
    """What one source gave: the indicators and what was skipped, by reason.

    Strict (the default, `vigia scan`): the first bad record refuses the file.
    Lenient (sources taken into the centre): a bad record is rejected with its
    position, counted, and the rest of the source loads.
    """

    source: str
    format: str
    indicators: list[Indicator] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    strict: bool = True
    rejected: list[str] = field(default_factory=list)  # "file:line: reason", the first 100
    yara_rules: dict[str, str] = field(default_factory=dict)  # namespace -> rule text (MISP)
    # The indicators to read once, as a loader gives them, instead of `indicators` (a
    # million-line CSV taken into the store without a list of a million records).
    stream: Iterable[Indicator] | None = field(default=None, repr=False)
    # The SHA-256 of the source's content, when the caller read it whole (a file): an
    # intake can then tell a source it took in unchanged (correlator.intake).
    digest: str | None = None
    # The digest of the content as it is now, asked after a full intake: a source that
    # changed while it was read is not remembered under the digest taken before.
    redigest: Callable[[], str | None] | None = field(default=None, repr=False)

    def reject(self, error: IndicatorFileError) -> None:
        if self.strict:
            raise error
        self.skipped["rejected"] += 1
        if len(self.rejected) < 100:
            self.rejected.append(str(error))


def detect_format(path: Path) -> str:
    """misp-event, misp-feed, zeek-intel, stix, csv, freetext; IndicatorFileError otherwise."""
    if path.is_dir():
        if (path / "manifest.json").is_file():
            return "misp-feed"
        raise IndicatorFileError(path, "a folder without manifest.json is not a MISP feed")
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise IndicatorFileError(path, f"cannot read: {exc.strerror}") from None
    text = head.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    if text.startswith("{"):
        try:
            doc = json.loads(path.read_bytes())
        except (ValueError, UnicodeDecodeError) as exc:
            raise IndicatorFileError(path, f"invalid JSON: {exc}") from None
        if isinstance(doc, dict) and doc.get("type") == "bundle":
            return "stix"
        if isinstance(doc, dict) and ("Event" in doc or "Attribute" in doc):
            return "misp-event"
        if (
            isinstance(doc, dict)
            and doc
            and all(isinstance(v, dict) and "info" in v for v in doc.values())
        ):
            raise IndicatorFileError(path, "this is a MISP feed manifest: give the feed folder")
        if isinstance(doc, dict) and "spec_version" in doc and "type" in doc:
            raise IndicatorFileError(
                path, f"a single STIX object ({doc['type']}), not a bundle of objects"
            )
        raise IndicatorFileError(path, "JSON that is neither a MISP event nor a STIX bundle")
    if text.startswith("#fields") or text.startswith("#separator"):
        return "zeek-intel"
    first = text.split("\n", 1)[0].lower()
    cols = [c.strip().strip('"') for c in first.split(",")]
    if "type" in cols and "value" in cols:
        return "csv"
    from rules.sources import freetext

    if freetext.looks_like_feed(path.read_text(encoding="utf-8", errors="replace")):
        return "freetext"
    raise IndicatorFileError(
        path,
        "not a recognised indicator file (MISP event JSON, MISP feed folder, "
        "Zeek intel, CSV with a type,value header)",
    )


def stream_indicator_file(
    path: str | Path, strict: bool = True
) -> tuple[LoadResult, Iterable[Indicator]]:
    """The result (without its indicators) and the indicators to read once: a CSV's
    one at a time (a bad record raises, or is counted, as it is reached), the other
    formats' from their loaded list. For a caller that only indexes them."""
    from rules.sources import csvfile

    p = Path(path)
    if p.is_file() and detect_format(p) == "csv":
        result = LoadResult(str(p), "csv", strict=strict)
        return result, csvfile.stream(p, result)
    result = load_indicator_file(p, strict)
    return result, result.indicators


def file_digest(path: str | Path) -> str | None:
    """The SHA-256 of a file's bytes (a 40 MB feed in a tenth of a second); None for a
    folder or what cannot be read (the loader then says why)."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError:
        return None


def load_indicator_file(path: str | Path, strict: bool = True) -> LoadResult:
    from rules.sources import csvfile, freetext, misp, stix, zeek  # loaded on use

    p = Path(path)
    if not p.exists():
        raise IndicatorFileError(p, "no such file or folder")
    fmt = detect_format(p)
    if fmt == "misp-event":
        return misp.load_event_file(p, strict)
    if fmt == "misp-feed":
        return misp.load_feed(p, strict)
    if fmt == "zeek-intel":
        return zeek.load(p, strict)
    if fmt == "csv":
        return csvfile.load(p, strict)
    if fmt == "freetext":
        return freetext.load(p, strict)
    return stix.load(p, strict)
