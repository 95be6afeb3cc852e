"""Free-text and MISP CSV feeds: bare values, their types recognised from their shape.

As MISP's free-text import does: addresses and networks, URLs, e-mail
addresses, MD5/SHA-1/SHA-256 hashes, and names (a registered-looking name of
two labels as `domain`, a longer one as `hostname`). Defanged values
(`hxxp`, `[.]`, `(.)`) are refanged first. A CSV feed gives its value in the
first column. `#` starts a comment line.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from rules.indicator import Indicator, IndicatorError, normalise
from rules.sources import IndicatorFileError, LoadResult

_HEX = re.compile(r"^[0-9a-fA-F]+$")
_NAME = re.compile(r"^(?=.{4,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,63}$")
_HASHES = {32: "md5", 40: "sha1", 64: "sha256"}


def refang(token: str) -> str:
    t = token.strip().strip("\"'<>")
    for a, b in (("[.]", "."), ("(.)", "."), ("[dot]", "."), ("[:]", ":"), ("[@]", "@")):
        t = t.replace(a, b)
    return re.sub(r"^h(xx|XX)p", "http", t)


def classify(token: str) -> str | None:
    """The MISP attribute type a bare value has, or None."""
    t = token.strip()
    if not t:
        return None
    try:
        ipaddress.ip_network(t, strict=False)
        return "ip-dst"
    except ValueError:
        pass
    lower = t.lower()
    if "://" in lower:
        return "url"
    if _EMAIL.match(lower):
        return "email"
    if len(t) in _HASHES and _HEX.match(t):
        return _HASHES[len(t)]
    if _NAME.match(lower):
        return "domain" if lower.count(".") == 1 else "hostname"
    return None


def _values(text: str) -> list[tuple[int, str]]:
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "," in line:  # a CSV feed: the value is the first column
            out.append((n, refang(line.split(",", 1)[0])))
        else:
            out.extend((n, refang(tok)) for tok in line.split())
    return out


def looks_like_feed(text: str) -> bool:
    values = _values(text)
    return bool(values) and all(classify(v) for _n, v in values)


def load(path: Path, strict: bool = True) -> LoadResult:
    result = LoadResult(str(path), "freetext", strict=strict)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise IndicatorFileError(path, f"cannot read: {exc}") from None
    for line, value in _values(text):
        itype = classify(value)
        if itype is None:
            result.reject(IndicatorFileError(path, f"not an indicator: {value!r}", line))
            continue
        try:
            normalised = normalise(itype, value)
        except IndicatorError as exc:
            result.reject(IndicatorFileError(path, str(exc), line))
            continue
        result.indicators.append(
            Indicator(type=itype, value=normalised, provider=path.name, event=path.name)
        )
    return result
