"""Reports that arrive by mail: an IMAP mailbox read with imaplib. Unseen messages
are fetched without marking them; their report attachments (CSV, gzip, or zip of
those) are handed over, and a message is marked seen only once its reports are in."""

from __future__ import annotations

import email
import email.policy
import imaplib
import io
import ssl
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import PurePath

MAX_ATTACHMENT = 512 * 1024 * 1024  # unpacked, per file: a zip bomb stops here
REPORT_SUFFIXES = (".csv", ".txt", ".gz")


class MailboxError(Exception):
    """The mailbox could not be read (connection, login, protocol)."""


@dataclass(frozen=True)
class Mailbox:
    host: str
    port: int
    user: str
    password: str
    folder: str = "INBOX"
    tls: bool = True


@dataclass
class Message:
    uid: str
    subject: str
    sender: str
    files: list[tuple[str, bytes]] = field(default_factory=list)  # (file name, content)


def _safe_name(name: str) -> str:
    """An attachment's own name, without folders (it becomes a file on disk)."""
    base = PurePath(name.replace("\\", "/")).name
    return "".join(c for c in base if c.isalnum() or c in "._-") or "adjunto.csv"


def _unzip(data: bytes) -> Iterator[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for info in z.infolist():
            if info.is_dir() or not info.filename.lower().endswith(REPORT_SUFFIXES):
                continue
            if info.file_size > MAX_ATTACHMENT:
                raise MailboxError(f"{info.filename}: more than {MAX_ATTACHMENT} bytes unpacked")
            yield _safe_name(info.filename), z.read(info)


def attachments(msg: EmailMessage) -> list[tuple[str, bytes]]:
    """The report files a message carries (zip attachments opened)."""
    out: list[tuple[str, bytes]] = []
    for part in msg.iter_attachments():
        name = part.get_filename() or ""
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        low = name.lower()
        if low.endswith(".zip"):
            try:
                out += list(_unzip(payload))
            except zipfile.BadZipFile:
                continue
        elif low.endswith(REPORT_SUFFIXES):
            out.append((_safe_name(name), payload))
    return out


@contextmanager
def connect(box: Mailbox, timeout: float = 30) -> Iterator[imaplib.IMAP4]:
    """Logged in with the folder selected (read-write, to mark messages seen)."""
    try:
        if box.tls:
            imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                box.host, box.port, ssl_context=ssl.create_default_context(), timeout=timeout
            )
        else:
            imap = imaplib.IMAP4(box.host, box.port, timeout=timeout)
            if "STARTTLS" in imap.capabilities:
                imap.starttls(ssl.create_default_context())
        imap.login(box.user, box.password)
        status, _ = imap.select(box.folder)
        if status != "OK":
            raise MailboxError(f"no folder {box.folder!r} in the mailbox")
    except (OSError, imaplib.IMAP4.error) as exc:
        raise MailboxError(f"{box.host}:{box.port}: {exc}") from None
    try:
        yield imap
    finally:
        with suppress(OSError, imaplib.IMAP4.error):
            imap.logout()


def unseen(imap: imaplib.IMAP4) -> list[Message]:
    """Unseen messages with report attachments (BODY.PEEK: reading marks nothing)."""
    status, data = imap.uid("SEARCH", "UNSEEN")
    if status != "OK":
        raise MailboxError("SEARCH UNSEEN failed")
    out: list[Message] = []
    for raw_uid in (data[0] or b"").split():
        uid = raw_uid.decode()
        status, parts = imap.uid("FETCH", uid, "(BODY.PEEK[])")
        raw = next((p[1] for p in parts if isinstance(p, tuple)), None)
        if status != "OK" or not isinstance(raw, bytes):
            continue
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        out.append(
            Message(uid, str(msg["Subject"] or ""), str(msg["From"] or ""), attachments(msg))
        )
    return out


def mark_seen(imap: imaplib.IMAP4, uid: str, flagged: bool = False) -> None:
    """Done with a message; `flagged` also when its reports were refused (for a person)."""
    flags = "(\\Seen \\Flagged)" if flagged else "(\\Seen)"
    imap.uid("STORE", uid, "+FLAGS", flags)
