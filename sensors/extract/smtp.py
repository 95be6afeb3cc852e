"""SMTP from the client's side: envelope, headers, and every MIME part (attachments).

Reads the client stream only: commands, then the message after DATA up to the
lone dot. The message is parsed with the standard library's `email`; each
leaf MIME part is decoded (base64, quoted-printable) so it can be hashed and
scanned. STARTTLS ends what can be seen.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, field
from email.utils import getaddresses

from sensors.analyzer import Analyzer, AnalyzerError, Endpoints
from sensors.report import Reporter

MAX_LINE = 4096
COMMAND_PREFIXES = (b"EHLO ", b"HELO ", b"ehlo ", b"helo ")


def looks_like_smtp(data: bytes) -> bool:
    return data.startswith(COMMAND_PREFIXES)


@dataclass
class Part:
    name: str | None
    content_type: str
    data: bytes


@dataclass
class Mail:
    mail_from: list[str] = field(default_factory=list)
    rcpt_to: list[str] = field(default_factory=list)
    header_from: list[str] = field(default_factory=list)
    header_to: list[str] = field(default_factory=list)
    header_cc: list[str] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)


class SmtpError(AnalyzerError):
    pass


def _addr(arg: str) -> str:
    """`FROM:<a@b> SIZE=1` → `a@b`."""
    value = arg.split(":", 1)[1].strip() if ":" in arg else arg.strip()
    if value.startswith("<"):
        value = value[1 : value.find(">")] if ">" in value else value[1:]
    return value.split(" ", 1)[0].strip().lower()


class SmtpParser:
    """Feed client bytes; completed transactions come back as `Mail`."""

    def __init__(self, max_message: int = 16 * 1024 * 1024) -> None:
        self.buf = bytearray()
        self.in_data = False
        self.message = bytearray()
        self.mail = Mail()
        self.max_message = max_message
        self.truncated = False
        self.done = False  # STARTTLS or QUIT

    def feed(self, data: bytes) -> list[Mail]:
        if self.done:
            return []
        self.buf += data
        out: list[Mail] = []
        while not self.done:
            nl = self.buf.find(b"\n")
            if nl < 0:
                if len(self.buf) > MAX_LINE and not self.in_data:
                    raise SmtpError("command line too long")
                if self.in_data and len(self.buf) > MAX_LINE:
                    self._keep(bytes(self.buf))  # a long body line: keep it, wait for its end
                    self.buf.clear()
                break
            line = bytes(self.buf[: nl + 1])
            del self.buf[: nl + 1]
            if self.in_data:
                if line.rstrip(b"\r\n") == b".":
                    out.append(self._finish())
                else:
                    self._keep(line[1:] if line.startswith(b"..") else line)  # dot-unstuffing
                continue
            self._command(line.decode("latin-1").strip())
        return out

    def _command(self, line: str) -> None:
        verb = line[:4].upper()
        if verb == "MAIL":
            self.mail = Mail(mail_from=[_addr(line[4:])])
        elif verb == "RCPT":
            self.mail.rcpt_to.append(_addr(line[4:]))
        elif verb == "DATA":
            self.in_data, self.message, self.truncated = True, bytearray(), False
        elif verb in ("STAR", "QUIT"):  # STARTTLS: the rest is encrypted
            self.done = True

    def _keep(self, data: bytes) -> None:
        room = self.max_message - len(self.message)
        if len(data) > room:
            data, self.truncated = data[:room], True
        self.message += data

    def _finish(self) -> Mail:
        self.in_data = False
        mail, self.mail = self.mail, Mail()
        msg = email.message_from_bytes(bytes(self.message), policy=email.policy.compat32)
        for header, target in (
            ("from", mail.header_from),
            ("to", mail.header_to),
            ("cc", mail.header_cc),
        ):
            for _name, address in getaddresses(msg.get_all(header, [])):
                if address:
                    target.append(address.lower())
        for part in msg.walk():
            if part.is_multipart():
                continue
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                mail.parts.append(Part(part.get_filename(), part.get_content_type(), payload))
        return mail


class SmtpAnalyzer(Analyzer):
    """Each mail's addresses, and each of its parts as a file."""

    def __init__(self, ends: Endpoints, report: Reporter) -> None:
        self.ends, self.report = ends, report
        self.parser = SmtpParser(report.config.max_body * 4)

    def feed(self, from_originator: bool, data: bytes, ts: float) -> bool:
        if from_originator:
            for mail in self.parser.feed(data):
                self.mail(mail, ts)
        return True

    def end(self, from_originator: bool, reset: bool, ts: float) -> None:
        pass

    def close(self, ts: float) -> None:
        pass

    def mail(self, mail: Mail, ts: float) -> None:
        obs = self.report.obs(self.ends, ts, "smtp")
        for address in mail.mail_from + mail.header_from:
            obs.add("email.from.address", address)
        for address in mail.rcpt_to + mail.header_to:
            obs.add("email.to.address", address)
        for address in mail.header_cc:
            obs.add("email.cc.address", address)
        self.report.emit(obs)
        for part in mail.parts:
            if part.data:
                self.report.file(
                    self.ends,
                    ts,
                    "smtp",
                    part.data,
                    part.name,
                    "email.attachment",
                    part.content_type,
                )
