"""For tests/test_reports.py: the constituency the samples are written against, a
real IMAP server (Debian's dovecot) on loopback, and reading what landed."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from certification.registry import Registry
from incidents.models import IncidentRow
from incidents.reports.models import ReportIncidentRow
from tests.centre import free_port
from vigia.wiring import Services

SAMPLES = Path(__file__).parent / "data" / "reports"
DOVECOT = "/usr/sbin/dovecot"
IMAP_USER, IMAP_PASSWORD = "informes@cert.example.org", "clave-de-prueba"

# (id, name, networks, domains, contact): the documentation ranges only. The hospital's
# /25 lies inside the ministry's /24: longest prefix must pick the hospital.
ENTITIES = [
    (
        "min-salud",
        "Ministerio de Salud",
        ["198.51.100.0/24", "2001:db8:10::/48"],
        ["salud.example.org"],
        "seguridad@salud.example.org",
    ),
    (
        "hospital-central",
        "Hospital Central",
        ["198.51.100.128/25"],
        ["hospital.example.org"],
        "so@hospital.example.org",
    ),
    (
        "min-educacion",
        "Ministerio de Educación",
        ["203.0.113.0/25"],
        ["educacion.example.net"],
        "cert@educacion.example.net",
    ),
]


def constituency(services: Services) -> None:
    with services.db.transaction() as s:
        for eid, name, nets, doms, mail in ENTITIES:
            Registry.add(s, eid, name, "central", nets, doms, "test")
            Registry.set_contacts(s, eid, [{"name": "Oficial", "email": mail}], "", "", "test")


def report_incidents(services: Services) -> dict[tuple[str, str, str], IncidentRow]:
    """(entity, kind, day) → its incident."""
    with services.db.transaction(write=False) as s:
        rows = s.execute(
            select(ReportIncidentRow, IncidentRow).join(
                IncidentRow, IncidentRow.id == ReportIncidentRow.incident_id
            )
        ).all()
        return {(r.entity_id, r.kind, r.day): inc for r, inc in rows}


@contextmanager
def dovecot() -> Iterator[int]:
    """Dovecot on a free loopback port, one user with a passwd-file password, plain
    IMAP (no TLS) since it never leaves loopback. Yields the port."""
    if not Path(DOVECOT).exists():
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd)")
    root = Path(tempfile.mkdtemp(prefix="vigia-imap-"))
    port = free_port()
    if os.getuid() == 0:  # dovecot's own users when run as root (CI)
        mail_user, login_user = "dovecot", "dovenull"
        uid = pwd.getpwnam(mail_user).pw_uid
    else:
        mail_user = login_user = pwd.getpwuid(os.getuid()).pw_name
        uid = os.getuid()
    for d in ("run", "state", "mail", "home"):
        (root / d).mkdir()
    os.chmod(root, 0o755)
    if os.getuid() == 0:
        for d in ("mail", "home"):
            shutil.chown(root / d, mail_user, mail_user)
    (root / "passwd").write_text(f"{IMAP_USER}:{{PLAIN}}{IMAP_PASSWORD}\n")
    conf = root / "dovecot.conf"
    conf.write_text(
        f"""protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:{root}/mail/%u
first_valid_uid = {uid}
default_internal_user = {mail_user}
default_login_user = {login_user}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_user} home={root}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""
    )
    proc = subprocess.Popen(
        [DOVECOT, "-c", str(conf), "-F"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 15
        import socket

        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = (
                        (root / "dovecot.log").read_text()
                        if (root / "dovecot.log").exists()
                        else ""
                    )
                    pytest.fail(f"dovecot did not start: {log[-500:]}")
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()  # the master stops its children (login, imap, anvil, log)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)


def attachment(msg: Any) -> tuple[str, str]:
    """(file name, text) of a mail's one attachment."""
    parts = list(msg.iter_attachments())
    assert len(parts) == 1
    return parts[0].get_filename(), parts[0].get_content()
