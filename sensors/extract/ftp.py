"""FTP: which data connection carries which file, and the file.

PASV/EPSV replies and PORT/EPRT commands on the control connection announce
the address of the next data connection (FtpAnalyzer tells the Reporter to
expect it); RETR/STOR name the file. The data connection's analyzer
(FtpDataAnalyzer) keeps its bytes and, when it ends, reports them as a file
named from the control connection.
"""

from __future__ import annotations

import re

from sensors.analyzer import Analyzer, Endpoints
from sensors.report import Reporter

FTP_PORTS: frozenset[int] = frozenset({21})
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


class FtpAnalyzer(Analyzer):
    """A control connection: each data connection it announces is expected."""

    def __init__(self, ends: Endpoints, report: Reporter) -> None:
        self.report = report
        self.control = FtpControl(ends.src_ip, ends.dst_ip)

    def feed(self, from_originator: bool, data: bytes, ts: float) -> bool:
        for address, port in self.control.feed(from_originator, data):
            self.report.expect("ftp-data", address, port, DataConnection(self.control))
        return True

    def end(self, from_originator: bool, reset: bool, ts: float) -> None:
        pass

    def close(self, ts: float) -> None:
        pass


class DataConnection:
    """The maker of an announced data connection's analyzer. It holds the control
    session's state only: neither its analyzer nor the Reporter (no cycle)."""

    def __init__(self, control: FtpControl) -> None:
        self.control = control

    def __call__(self, ends: Endpoints, report: Reporter) -> Analyzer:
        return FtpDataAnalyzer(ends, report, self.control)


class FtpDataAnalyzer(Analyzer):
    """A data connection: its bytes (either way, up to max_body), a file when it
    ends if the control connection was transferring one (not a listing)."""

    def __init__(self, ends: Endpoints, report: Reporter, control: FtpControl) -> None:
        self.ends, self.report = ends, report
        self.control: FtpControl | None = control  # None once reported
        self.data = bytearray()
        self.room = report.config.max_body

    def feed(self, from_originator: bool, data: bytes, ts: float) -> bool:
        if self.control is not None:
            self.data += data[: max(0, self.room - len(self.data))]
        return True

    def end(self, from_originator: bool, reset: bool, ts: float) -> None:
        self.close(ts)  # either side's FIN ends the transfer

    def close(self, ts: float) -> None:
        control, self.control = self.control, None
        if control is not None and self.data and control.transferring_file:
            self.report.file(
                self.ends, ts, "ftp-data", bytes(self.data), control.filename, "ftp.data"
            )
        self.data = bytearray()
