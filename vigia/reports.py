"""External reports with this installation's services: by hand (`vigia reports
import`), from a watched folder, an IMAP mailbox and polled URLs (the scheduler's
`reports` job). Every way in runs the same import: recognise, attribute, de-duplicate,
group, notify."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy.orm import Session

from core import audit
from core.clock import utcnow
from incidents import digest, prefs
from incidents.models import IncidentRow
from incidents.reports import mailbox
from incidents.reports.formats import Format, FormatError, by_name, generic_format
from incidents.reports.intake import ACTOR, Intake, Notifier, Summary
from incidents.reports.records import Opened, open_report
from vigia.wiring import Services

log = logging.getLogger("vigia.reports")
REPORT_FILES = (".csv", ".txt", ".gz")
MAX_DOWNLOAD = 512 * 1024 * 1024
DONE, REJECTED = "procesados", "rechazados"


def notifier(services: Services) -> Notifier:
    """The reports' notices as each entity asked for them, per RSIT class
    (incidents/prefs.py): into the outbox at once, or held for its daily digest."""
    at_once = services.report_notifier

    def queue(session: Session, incident_id: int, entity_id: str, extra: dict[str, Any]) -> int:
        inc = session.get(IncidentRow, incident_id)
        if inc is not None and prefs.mode_for(session, entity_id, inc.rsit_class) == prefs.DIGEST:
            return digest.hold(session, incident_id, entity_id, extra, ACTOR)
        return at_once(session, incident_id, entity_id, extra)

    return queue


def digest_job(services: Services) -> int:
    """The scheduler's daily digests: one mail per entity and day before today."""
    with services.db.transaction() as session:
        sent = digest.send(session, services.mailer, services.contacts, services.policy)
    if sent.mails or sent.failed:
        log.info("digests: %d mailed, %d held back", sent.mails, sent.failed)
    return sent.mails


def expand(paths: Sequence[Path]) -> list[Path]:
    """Files as given, folders as the report files directly inside them."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(
                f for f in p.iterdir() if f.is_file() and f.name.lower().endswith(REPORT_FILES)
            )
        elif p.is_file():
            out.append(p)
        else:
            raise FormatError(f"{p}: no existe")
    if not out:
        raise FormatError("ningún archivo de informe en " + ", ".join(str(p) for p in paths))
    return out


def chosen_format(name: str | None, mapping: Path | None) -> Format | None:
    if mapping is not None:
        return generic_format(mapping)
    return by_name(name) if name else None


def import_files(
    services: Services,
    files: Sequence[Path],
    fmt: Format | None = None,
    source: str | None = None,
    notify: bool = True,
    actor: str = ACTOR,
) -> Summary:
    """Take the files in, in one transaction. Every file is recognised first: a bad
    one raises FormatError naming it and nothing is taken in."""
    opened: list[Opened] = []
    try:
        for f in files:
            opened.append(open_report(f, fmt))
        now = utcnow()
        # The import's audit records (an incident opened, an entity notified: a few
        # per incident) chained and written together at the end of the import.
        with services.db.transaction() as session, audit.batched(session):
            intake = Intake(
                session,
                services.constituency.attributor(session),
                services.policy,
                services.report_policy,
                actor,
            )
            for o in opened:
                b = o.builder
                intake.add(o.findings(now), source or o.path.name, o.fmt.title, b.kind, b.classes)
                intake.summary.rejected += o.builder.rejected
                intake.summary.ignored += o.builder.ignored
            label = source or ", ".join(f.name for f in files)
            return intake.finish(notifier(services) if notify else None, label)
    finally:
        for o in opened:
            o.fh.close()


def import_paths(
    services: Services,
    paths: Sequence[Path],
    fmt_name: str | None = None,
    mapping: Path | None = None,
    notify: bool = True,
) -> Summary:
    return import_files(services, expand(paths), chosen_format(fmt_name, mapping), notify=notify)


def _move(f: Path, folder: str) -> None:
    target = f.parent / folder
    target.mkdir(exist_ok=True)
    dest = target / f.name
    if dest.exists():
        dest = target / f"{utcnow():%Y%m%dT%H%M%S}-{f.name}"
    shutil.move(str(f), dest)


def folder_once(services: Services, folder: Path) -> Summary:
    """Each report file in the folder, one by one: into procesados/ once taken in,
    into rechazados/ (with the reason logged) when no format takes it."""
    total = Summary()
    for f in sorted(folder.iterdir()):
        if not f.is_file() or not f.name.lower().endswith(REPORT_FILES):
            continue
        try:
            total.add(import_files(services, [f], source=f"carpeta:{f.name}"))
        except FormatError as exc:
            log.warning("report file refused: %s", exc)
            _move(f, REJECTED)
            continue
        _move(f, DONE)
    return total


def mailbox_once(services: Services, box: mailbox.Mailbox) -> Summary:
    """Unseen messages' report attachments; a message is marked seen once they are
    in (flagged too when refused, so a person looks at it)."""
    total = Summary()
    with mailbox.connect(box) as imap:
        for msg in mailbox.unseen(imap):
            if not msg.files:
                mailbox.mark_seen(imap, msg.uid)
                continue
            with tempfile.TemporaryDirectory() as tmp:
                paths = []
                for name, data in msg.files:
                    p = Path(tmp) / name
                    p.write_bytes(data)
                    paths.append(p)
                try:
                    total.add(import_files(services, paths, source=f"imap:{msg.subject}"[:300]))
                except FormatError as exc:
                    log.warning("report mail %r refused: %s", msg.subject, exc)
                    mailbox.mark_seen(imap, msg.uid, flagged=True)
                    continue
            mailbox.mark_seen(imap, msg.uid)
    return total


def fetch(url: str, folder: Path) -> Path:
    """A report feed's file, streamed to disk with a size cap."""
    name = Path(urlsplit(url).path).name or "informe.csv"
    target = folder / name
    with (
        httpx.Client(trust_env=False, follow_redirects=True, timeout=60) as client,
        client.stream("GET", url) as resp,
    ):
        if resp.status_code != 200:
            raise FormatError(f"{url}: respondió {resp.status_code}")
        size = 0
        with target.open("wb") as fh:
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > MAX_DOWNLOAD:
                    raise FormatError(f"{url}: más de {MAX_DOWNLOAD} bytes")
                fh.write(chunk)
    return target


def url_once(services: Services, url: str) -> Summary:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = fetch(url, Path(tmp))
        except httpx.HTTPError as exc:
            raise FormatError(f"{url}: {exc}") from None
        return import_files(services, [path], source=url)


def configured_mailbox(services: Services) -> mailbox.Mailbox | None:
    s = services.settings
    if not s.reports_imap_host:
        return None
    password = (
        s.reports_imap_password_file.read_text().strip() if s.reports_imap_password_file else ""
    )
    return mailbox.Mailbox(
        s.reports_imap_host,
        s.reports_imap_port,
        s.reports_imap_user,
        password,
        s.reports_imap_mailbox,
        s.reports_imap_tls,
    )


def reports_job(services: Services) -> Summary:
    """The scheduled intake: the watched folder, the mailbox, the URLs. One source
    failing leaves the others to run; the run then counts as failed."""
    s, total, failed = services.settings, Summary(), []
    if s.reports_dir is not None and s.reports_dir.is_dir():
        total.add(folder_once(services, s.reports_dir))
    box = configured_mailbox(services)
    if box is not None:
        try:
            total.add(mailbox_once(services, box))
        except mailbox.MailboxError as exc:
            log.warning("reports mailbox: %s", exc)
            failed.append(f"imap: {exc}")
    for url in s.reports_urls:
        try:
            total.add(url_once(services, url))
        except FormatError as exc:
            log.warning("report feed %s: %s", url, exc)
            failed.append(str(exc))
    if total.records:
        log.info(
            "reports: %d records, %d incidents opened, %d updated, %d unattributed",
            total.records,
            len(total.opened),
            len(total.updated),
            total.unattributed,
        )
    if failed:
        raise RuntimeError("; ".join(failed))
    return total
