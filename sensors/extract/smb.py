"""SMB2/3 over TCP 445: the file names that clients open (CREATE requests).

Only the client's requests are read: NetBIOS session framing, then SMB2
headers (compound requests followed through NextCommand). Signed or
encrypted (SMB3 transform) messages are skipped, counted by the caller.
"""

from __future__ import annotations

import struct

from sensors.analyzer import Analyzer, AnalyzerError, Endpoints
from sensors.report import Reporter

SMB_PORTS = frozenset({445})
_SMB2 = b"\xfeSMB"
_TRANSFORM = b"\xfdSMB"
_CREATE = 0x0005
_MAX_MESSAGE = 1 << 20


class SmbError(AnalyzerError):
    pass


def looks_like_smb(data: bytes) -> bool:
    return len(data) >= 8 and data[0] == 0 and data[4:8] in (_SMB2, _TRANSFORM, b"\xffSMB")


class SmbClient:
    """Feed the client's stream; returns the path names of CREATE requests."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[str]:
        self.buf += data
        names: list[str] = []
        while len(self.buf) >= 4:
            if self.buf[0] != 0:
                raise SmbError("not NetBIOS session framing")
            length = int.from_bytes(self.buf[1:4])
            if length > _MAX_MESSAGE:
                raise SmbError("message too large")
            if len(self.buf) < 4 + length:
                break
            message = bytes(self.buf[4 : 4 + length])
            del self.buf[: 4 + length]
            names.extend(_creates(message))
        return names


def _creates(msg: bytes) -> list[str]:
    names = []
    pos = 0
    for _ in range(64):  # compound chains are short; bound hostile ones
        if msg[pos : pos + 4] != _SMB2 or pos + 64 > len(msg):
            break
        command = struct.unpack_from("<H", msg, pos + 12)[0]
        flags, next_command = struct.unpack_from("<II", msg, pos + 16)
        if command == _CREATE and not flags & 1 and pos + 64 + 56 <= len(msg):  # a request
            name_off, name_len = struct.unpack_from("<HH", msg, pos + 64 + 44)
            start = pos + name_off
            raw = msg[start : start + name_len]
            if len(raw) == name_len and name_len:
                names.append(raw.decode("utf-16-le", "replace"))
        if not next_command:
            break
        pos += next_command
    return names


class SmbAnalyzer(Analyzer):
    """The names the client opens, as file.path and file.name."""

    def __init__(self, ends: Endpoints, report: Reporter) -> None:
        self.ends, self.report = ends, report
        self.client = SmbClient()

    def feed(self, from_originator: bool, data: bytes, ts: float) -> bool:
        if not from_originator:
            return True
        names = self.client.feed(data)
        if names:
            obs = self.report.obs(self.ends, ts, "smb")
            for name in names:
                obs.add("file.path", name)
                base = name.replace("\\", "/").rsplit("/", 1)[-1]
                if base:
                    obs.add("file.name", base)
            self.report.emit(obs)
        return True

    def end(self, from_originator: bool, reset: bool, ts: float) -> None:
        pass

    def close(self, ts: float) -> None:
        pass
