"""FTP control connections: which data connection carries which file.

PASV/EPSV replies and PORT/EPRT commands announce the address of the next
data connection; RETR/STOR name the file. The engine hashes what the data
connection carries and names it from here.
"""

from __future__ import annotations

import re

FTP_PORTS = frozenset({21})
MAX_LINE = 4096
_PASV = re.compile(rb"\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)")
_EPSV = re.compile(rb"\(\|\|\|(\d+)\|\)")
TRANSFERS = frozenset({b"RETR", b"STOR", b"STOU", b"APPE"})
_PORT = re.compile(rb"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)")


class FtpControl:
    def __init__(self, client_ip: str, server_ip: str) -> None:
        self.client_ip, self.server_ip = client_ip, server_ip
        self.bufs = [bytearray(), bytearray()]
        self.filename: str | None = None
        self.command: str | None = None

    def feed(self, from_client: bool, data: bytes) -> list[tuple[str, int]]:
        """Returns the (address, port) of data connections announced by these bytes."""
        buf = self.bufs[0 if from_client else 1]
        buf += data
        out: list[tuple[str, int]] = []
        while (nl := buf.find(b"\n")) >= 0:
            line = bytes(buf[:nl]).strip()
            del buf[: nl + 1]
            found = self._client(line) if from_client else self._server(line)
            if found:
                out.append(found)
        if len(buf) > MAX_LINE:
            buf.clear()
        return out

    def _client(self, line: bytes) -> tuple[str, int] | None:
        verb, _, arg = line.partition(b" ")
        verb = verb.upper()
        if verb in TRANSFERS:
            self.command = verb.decode()
            self.filename = arg.decode("utf-8", "replace").strip().rsplit("/", 1)[-1] or None
        elif verb in (b"LIST", b"NLST", b"MLSD"):  # a directory listing, not a file
            self.command, self.filename = verb.decode(), None
        elif verb == b"PORT" and (m := _PORT.search(arg)):
            n = [int(x) for x in m.groups()]
            return ".".join(map(str, n[:4])), n[4] * 256 + n[5]
        elif verb == b"EPRT":
            parts = arg.decode("latin-1").split(arg[:1].decode("latin-1") or "|")
            if len(parts) >= 4 and parts[3].isdigit():
                return parts[2], int(parts[3])
        return None

    @property
    def transferring_file(self) -> bool:
        return self.command is not None and self.command.encode() in TRANSFERS

    def _server(self, line: bytes) -> tuple[str, int] | None:
        if line.startswith(b"227") and (m := _PASV.search(line)):
            n = [int(x) for x in m.groups()]
            return ".".join(map(str, n[:4])), n[4] * 256 + n[5]
        if line.startswith(b"229") and (m := _EPSV.search(line)):
            return self.server_ip, int(m.group(1))
        return None
