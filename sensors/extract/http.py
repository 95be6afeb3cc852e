"""HTTP/1.x over a reassembled TCP connection: requests, and bodies for scanning.

One `HttpParser` per direction. It survives pipelining, chunked transfer
coding and gzip/deflate content coding; every buffer is capped, and a
decompression bomb stops at `max_body` output bytes.
"""

from __future__ import annotations

import ipaddress
import zlib
from dataclasses import dataclass, field

METHODS = (
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
    b"PROPFIND ",
)
MAX_HEADER = 64 * 1024


def looks_like_request(data: bytes) -> bool:
    return data.startswith(METHODS)


@dataclass(slots=True)
class Request:
    method: str
    uri: str
    version: str
    headers: dict[str, str]


@dataclass(slots=True)
class Body:
    """A complete (or capped) message body, decoded, with what named it."""

    from_client: bool
    data: bytes
    uri: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    truncated: bool = False


class HttpError(ValueError):
    pass


class HttpParser:
    """Parses one direction; `feed` returns the requests and bodies completed."""

    def __init__(
        self,
        from_client: bool,
        max_body: int = 4 * 1024 * 1024,
        pending: list[tuple[str, str]] | None = None,
    ) -> None:
        self.from_client = from_client
        self.max_body = max_body
        self.buf = bytearray()
        self.state = "head"
        self.remaining = 0
        self.body = bytearray()
        self.truncated = False
        self.headers: dict[str, str] = {}
        self.uri = ""
        # (method, uri) of requests not yet answered, shared by the two directions:
        # a HEAD response has no body, and a response body is named by its URI.
        self.pending_methods: list[tuple[str, str]] = [] if pending is None else pending
        self.dead = False

    def feed(self, data: bytes) -> list[Request | Body]:
        if self.dead:
            return []
        self.buf += data
        out: list[Request | Body] = []
        try:
            while self._step(out):
                pass
        except HttpError:
            self.dead = True  # not HTTP (any more): stop looking at this stream
        return out

    def close(self) -> list[Request | Body]:
        """The connection ended: a body delimited by close is complete now."""
        if self.state == "until_close" and not self.dead:
            return [self._finish()]
        return []

    def _step(self, out: list[Request | Body]) -> bool:
        if self.state == "head":
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEADER:
                    raise HttpError("header too long")
                return False
            head, self.buf = bytes(self.buf[:end]), self.buf[end + 4 :]
            self._head(head, out)
            return True
        if self.state in ("length", "until_close"):
            if self.state == "length":
                take = min(self.remaining, len(self.buf))
                self.remaining -= take
            else:
                take = len(self.buf)
            self._keep(self.buf[:take])
            del self.buf[:take]
            if self.state == "length" and self.remaining == 0:
                out.append(self._finish())
                return True
            return False
        if self.state == "chunk_size":
            nl = self.buf.find(b"\r\n")
            if nl < 0:
                if len(self.buf) > 1024:
                    raise HttpError("bad chunk size line")
                return False
            size_text = bytes(self.buf[:nl]).split(b";")[0].strip()
            del self.buf[: nl + 2]
            try:
                size = int(size_text, 16)
            except ValueError:
                raise HttpError("bad chunk size") from None
            if size == 0:
                self.state = "trailer"
            else:
                self.remaining, self.state = size, "chunk_data"
            return True
        if self.state == "chunk_data":
            take = min(self.remaining, len(self.buf))
            self._keep(self.buf[:take])
            del self.buf[:take]
            self.remaining -= take
            if self.remaining:
                return False
            self.state = "chunk_crlf"
            return True
        if self.state == "chunk_crlf":
            if len(self.buf) < 2:
                return False
            del self.buf[:2]
            self.state = "chunk_size"
            return True
        if self.state == "trailer":
            nl = self.buf.find(b"\r\n")
            if nl < 0:
                return False
            del self.buf[: nl + 2]
            if nl == 0:  # empty line ends the trailer
                out.append(self._finish())
            return True
        return False

    def _head(self, head: bytes, out: list[Request | Body]) -> None:
        lines = head.split(b"\r\n")
        start = lines[0].decode("latin-1")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if sep:
                key = name.strip().decode("latin-1").lower()
                val = value.strip().decode("latin-1")
                headers[key] = f"{headers[key]}, {val}" if key in headers else val
        parts = start.split(" ", 2)
        self.headers, self.body, self.truncated = headers, bytearray(), False
        if self.from_client:
            if len(parts) != 3 or not parts[2].startswith("HTTP/"):
                raise HttpError("not an HTTP request line")
            req = Request(parts[0], parts[1], parts[2][5:], headers)
            out.append(req)
            self.uri = req.uri
            self.pending_methods.append((req.method, req.uri))
            self._body_mode(headers, no_body=False)
            return
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise HttpError("not an HTTP status line")
        try:
            status = int(parts[1])
        except ValueError:
            raise HttpError("bad status code") from None
        method, self.uri = self.pending_methods.pop(0) if self.pending_methods else ("GET", "")
        if 100 <= status < 200:
            self.state = "head"  # interim response; the real one follows
            self.pending_methods.insert(0, (method, self.uri))
            return
        self._body_mode(headers, no_body=method == "HEAD" or status in (204, 304))

    def _body_mode(self, headers: dict[str, str], no_body: bool) -> None:
        if no_body:
            self.state = "head"
            return
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self.state = "chunk_size"
            return
        length = headers.get("content-length")
        if length is not None:
            try:
                self.remaining = int(length.split(",")[0])
            except ValueError:
                raise HttpError("bad content-length") from None
            self.state = "length" if self.remaining > 0 else "head"
            return
        # A request without length has no body; a response runs to the close.
        self.state = "head" if self.from_client else "until_close"

    def _keep(self, data: bytes | bytearray) -> None:
        room = self.max_body - len(self.body)
        if len(data) > room:
            data, self.truncated = data[:room], True
        self.body += data

    def _finish(self) -> Body:
        self.state = "head"
        data = bytes(self.body)
        self.body = bytearray()
        coding = self.headers.get("content-encoding", "").lower()
        if coding in ("gzip", "x-gzip", "deflate") and data:
            data = _inflate(data, self.max_body)
        return Body(self.from_client, data, self.uri, self.headers, self.truncated)


def _inflate(data: bytes, limit: int) -> bytes:
    """Decode gzip/zlib/raw deflate with a cap on output (bombs stop at `limit`)."""
    for wbits in (47, -15):  # 47: gzip or zlib header, auto-detected; -15: raw deflate
        try:
            d = zlib.decompressobj(wbits)
            return d.decompress(data, limit)
        except zlib.error:
            continue
    return data  # not really compressed: scan it as it came


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def host_only(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):  # [v6]:port
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def file_name(body: Body) -> str:
    disp = body.headers.get("content-disposition", "")
    if "filename=" in disp:
        return disp.split("filename=", 1)[1].split(";")[0].strip().strip('"')
    path = body.uri.split("?", 1)[0]
    last = path.rsplit("/", 1)[-1]
    return last
