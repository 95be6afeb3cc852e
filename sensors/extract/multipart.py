"""multipart/form-data request bodies (RFC 7578, framed as RFC 2046): the parts.

An HTTP upload is one part of such a body: its Content-Disposition names the
form field and, for a file, the file (`filename="putty.exe"`, or RFC 5987's
`filename*=UTF-8''…`). The parser works on a body already capped by the HTTP
parser, finds delimiters with bytes.find (no per-byte loop), accepts CRLF and
bare LF line ends, and bounds its work: parts, nesting, header size.
Malformed input raises MultipartError, and nothing else.
"""

from __future__ import annotations

import binascii
import contextlib
import re
from urllib.parse import unquote_to_bytes

MAX_PARTS = 256  # leaf parts of one body, nested ones included
MAX_DEPTH = 2  # a form part may hold multipart/mixed (RFC 2388's several files in one field)
MAX_PART_HEADER = 8 * 1024
MAX_BOUNDARY = 200  # RFC 2046 says 70; leave room for lax clients, not for abuse


class MultipartError(ValueError):
    pass


class Part:
    """One leaf part: its form field, its file name (None for a plain field), its bytes."""

    __slots__ = ("data", "field", "filename", "mime_type")

    def __init__(self, field: str, filename: str | None, mime_type: str, data: bytes) -> None:
        self.field, self.filename, self.mime_type, self.data = field, filename, mime_type, data

    @property
    def is_file(self) -> bool:
        """A file, not a typed-in value: it has a file name, or its sender declared a
        type other than text (a field's value is text/plain by default, RFC 7578 4.4)."""
        return self.filename is not None or (
            self.mime_type != "" and not self.mime_type.startswith("text/")
        )


class Form:
    """The parts of a body; `complete` is False when the closing delimiter never came."""

    __slots__ = ("complete", "parts")

    def __init__(self) -> None:
        self.parts: list[Part] = []
        self.complete = True


def is_multipart(content_type: str) -> bool:
    return content_type[:10].lower() == "multipart/"


def boundary_of(content_type: str) -> bytes:
    """The boundary parameter of a multipart Content-Type."""
    _kind, params = header_params(content_type)
    boundary = params.get("boundary", "")
    if not boundary:
        raise MultipartError("multipart without boundary")
    if len(boundary) > MAX_BOUNDARY:
        raise MultipartError("multipart boundary too long")
    return boundary.encode("utf-8", "replace")


def parse(body: bytes, boundary: bytes) -> Form:
    form = Form()
    _parse(body, boundary, "", 0, form)
    return form


def _parse(body: bytes, boundary: bytes, field: str, depth: int, form: Form) -> None:
    delim = b"--" + boundary
    after_nl = re.compile(b"\n" + re.escape(delim) + b"(?=--|[ \t\r\n]|\\Z)")
    pos = _delimiter(body, delim, after_nl, 0)
    if pos < 0:
        raise MultipartError("multipart boundary not found")
    while True:
        after = pos + len(delim)
        if body.startswith(b"--", after):
            return  # the close delimiter; what follows is the epilogue
        line_end = body.find(b"\n", after)
        if line_end < 0:
            form.complete = False  # cut right after a delimiter
            return
        head_start = line_end + 1
        nxt = _delimiter(body, delim, after_nl, head_start)
        limit = len(body) if nxt < 0 else nxt
        if body.startswith(b"\r\n", head_start) or body.startswith(b"\n", head_start):
            head_end = head_start  # no header lines at all
        else:
            head_end = _blank_line(body, head_start, min(limit, head_start + MAX_PART_HEADER + 4))
            if head_end < 0:
                if nxt < 0 and len(body) - head_start <= MAX_PART_HEADER:
                    form.complete = False  # cut inside the part's header
                    return
                raise MultipartError("multipart part header without end")
        data_start = head_end + (2 if body.startswith(b"\r\n", head_end) else 1)
        if nxt < 0:
            data = body[data_start:]
        else:  # the line end before the delimiter belongs to the delimiter (RFC 2046)
            end = nxt - 1
            if end > data_start and body[end - 1] == 0x0D:
                end -= 1
            data = body[data_start:end] if end > data_start else b""
        _part(_headers(body[head_start:head_end]), data, field, depth, form)
        if nxt < 0:
            form.complete = False  # no closing delimiter: the body ended (or was capped) here
            return
        pos = nxt


def _delimiter(body: bytes, delim: bytes, after_nl: re.Pattern[bytes], start: int) -> int:
    """Where the next delimiter line starts: `--boundary` at the start of the body or
    of a line, followed by `--`, white space or a line end (else it is content).
    A regular expression, not a loop over bytes.find: a body full of near-delimiters
    costs one C-level scan."""
    if start == 0 and body.startswith(delim):
        follow = body[len(delim) : len(delim) + 2]
        if follow[:1] in (b"", b"\r", b"\n", b" ", b"\t") or follow == b"--":
            return 0
    found = after_nl.search(body, max(start - 1, 0))
    return -1 if found is None else found.start() + 1


def _blank_line(body: bytes, start: int, stop: int) -> int:
    """Where the empty line ending a header block starts (its line end), or -1."""
    lf = body.find(b"\n\n", start, stop)
    crlf = body.find(b"\n\r\n", start, stop)
    if lf < 0 and crlf < 0:
        return -1
    if lf < 0 or 0 <= crlf < lf:
        return crlf + 1
    return lf + 1


def _headers(block: bytes) -> dict[str, str]:
    """A part's header lines by lower-case name (folded lines joined)."""
    text = _text(block)
    headers: dict[str, str] = {}
    last = ""
    for line in text.replace("\r\n", "\n").split("\n"):
        if line[:1] in (" ", "\t") and last:
            headers[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if sep:
            last = name.strip().lower()
            if last not in headers:
                headers[last] = value.strip()
    return headers


def _part(headers: dict[str, str], data: bytes, field: str, depth: int, form: Form) -> None:
    _disposition, params = header_params(headers.get("content-disposition", ""))
    name = params.get("name", field)
    mime_type, type_params = header_params(headers.get("content-type", ""))
    if mime_type.startswith("multipart/") and type_params.get("boundary"):
        if depth + 1 >= MAX_DEPTH:
            raise MultipartError("multipart nested too deep")
        _parse(data, boundary_of(headers["content-type"]), name, depth + 1, form)
        return
    if len(form.parts) >= MAX_PARTS:
        raise MultipartError("multipart with too many parts")
    coding = headers.get("content-transfer-encoding", "").lower()
    # Deprecated in forms (RFC 7578 4.7), still sent by some clients.
    if coding == "base64":
        with contextlib.suppress(binascii.Error):  # not base64 after all: keep it as it came
            data = binascii.a2b_base64(data)
    elif coding == "quoted-printable":
        data = binascii.a2b_qp(data)
    form.parts.append(Part(name, disposition_filename(params), mime_type, data))


def disposition_filename(params: dict[str, str]) -> str | None:
    """The file name of a Content-Disposition's parameters: `filename*` (RFC 5987/8187)
    first, as RFC 6266 says, then `filename`; None when neither is there."""
    extended = params.get("filename*")
    if extended is not None:
        decoded = _ext_value(extended)
        if decoded is not None:
            return decoded
    return params.get("filename")


def _ext_value(text: str) -> str | None:
    """`UTF-8'en'na%C3%AFve.exe` → `naïve.exe` (RFC 8187: UTF-8 or ISO-8859-1)."""
    charset, sep, rest = text.partition("'")
    _lang, sep2, encoded = rest.partition("'")
    if not sep or not sep2:
        return None
    raw = unquote_to_bytes(encoded)
    if charset.strip().lower() in ("utf-8", "utf8"):
        return raw.decode("utf-8", "replace")
    return raw.decode("latin-1")


def header_params(value: str) -> tuple[str, dict[str, str]]:
    """`form-data; name="f"; filename="a;b.exe"` → ("form-data", {"name": "f", ...}).

    Values may be tokens or quoted strings; in a quoted string only `\\"` and
    `\\\\` are escapes: browsers send Windows paths with bare backslashes. The
    first of a repeated parameter counts.
    """
    semi = value.find(";")
    if semi < 0:
        return value.strip().lower(), {}
    kind, rest = value[:semi].strip().lower(), value[semi + 1 :]
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        eq, semi = rest.find("=", i), rest.find(";", i)
        if eq < 0 or 0 <= semi < eq:  # a parameter without a value: skip it
            if semi < 0:
                break
            i = semi + 1
            continue
        key = rest[i:eq].strip().lower()
        i = eq + 1
        while i < n and rest[i] in " \t":
            i += 1
        if i < n and rest[i] == '"':
            i += 1
            chars: list[str] = []
            while i < n:
                ch = rest[i]
                if ch == "\\" and i + 1 < n and rest[i + 1] in '"\\':
                    chars.append(rest[i + 1])
                    i += 2
                    continue
                i += 1
                if ch == '"':
                    break
                chars.append(ch)
            val = "".join(chars)
            semi = rest.find(";", i)
            i = n if semi < 0 else semi + 1
        else:
            end = n if semi < 0 else semi
            val = rest[i:end].strip()
            i = end + 1
        if key and key not in params:
            params[key] = val
    return kind, params


def _text(raw: bytes) -> str:
    """Header bytes as text: UTF-8 as browsers send it, else Latin-1 (never fails)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def split_path(name: str) -> tuple[str, str]:
    """(file name, full path): a name sent with its directory (old browsers sent
    `C:\\Users\\…\\putty.exe`) gives the base name and the path; else the path is ''."""
    cut = max(name.rfind("/"), name.rfind("\\"))
    if cut < 0:
        return name, ""
    return name[cut + 1 :], name
