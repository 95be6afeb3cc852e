"""Security of the data at rest and of what leaves the centre (issue 13, findings 4, 6,
7, 9, 10 and the smaller ones): the keyed audit chain and its anchors, webhook targets
(SSRF, DNS rebinding), CSV formula injection, restore that leaves nothing behind, file
modes and sealed secrets, SMTP AUTH only over STARTTLS, a taken port, token ids."""

from __future__ import annotations

import email.policy
import io
import os
import socket
import stat
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient

from api.app import create_app
from certification import progress
from certification.registry import EntityRow, Registry
from core import audit, csvsafe, keys
from core.clock import iso
from core.netguard import TargetError, TargetPolicy
from core.settings import SettingsError, load_settings
from core.tokens import Role
from incidents import metrics, notify
from tests.centre import free_port
from tests.conftest import bearer, make_token
from tests.vigia_cli import in_process
from vigia.backup import BackupError, backup, restore
from vigia.wiring import Services, build, contact_book

SECRET = "s3cret-webhook-key-of-32-chars!!"


def _vigia(data: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "VIGIA_DATA_DIR": str(data), **env}
    full.pop("VIGIA_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "vigia", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=120,
    )


def _fill(services: Services, n: int) -> None:
    for i in range(n):
        with services.db.transaction() as s:
            audit.append(s, "test", "thing.change", "thing", str(i), {"i": i})


def _rewrite_plain(
    services: Services, start: int, change: dict[int, dict[str, Any]], upto: int = 10**9
) -> None:
    """What a database-only attacker does: change records and recompute every digest
    from `start` on (and the head) with plain SHA-256, the only hash he can compute."""
    t, h = audit.AuditRecord.__table__, audit.AuditHead.__table__
    with services.db.engine.begin() as conn:
        rows = conn.execute(sa.select(t).order_by(t.c.seq)).mappings().all()
        prev = audit.GENESIS
        for r in rows:
            detail = change.get(r["seq"], r["detail"])
            if start <= r["seq"] <= upto:
                digest = audit.record_hash(
                    prev,
                    r["seq"],
                    iso(r["ts"]),
                    r["actor"],
                    r["action"],
                    r["object_type"],
                    r["object_id"],
                    detail,
                    None,
                )
                conn.execute(
                    t.update()
                    .where(t.c.seq == r["seq"])
                    .values(detail=detail, prev_hash=prev, hash=digest)
                )
                prev = digest
            else:
                prev = r["hash"]
        if upto >= len(rows):
            conn.execute(h.update().where(h.c.id == 1).values(hash=prev))


# -- 4. the audit chain is keyed -------------------------------------------------


def test_a_record_changed_and_rehashed_with_plain_sha256_is_caught(services: Services) -> None:
    _fill(services, 5)
    _rewrite_plain(services, 3, {3: {"i": 999}})
    with services.db.transaction(write=False) as s:
        v = audit.verify(s)
    assert not v.ok and v.problem == "record 3 was modified"
    # The whole chain rewritten in plain SHA-256 (no keyed record left) is refused too.
    _rewrite_plain(services, 1, {})
    with services.db.transaction(write=False) as s:
        v = audit.verify(s)
    assert not v.ok and "no record is keyed" in v.problem


def test_an_anchor_catches_a_cut_tail_and_a_rewritten_history(services: Services) -> None:
    _fill(services, 5)
    with services.db.transaction(write=False) as s:
        anchor = audit.anchor(s)
    assert anchor.seq == 5 and audit.Anchor.parse(str(anchor)) == anchor
    _fill(services, 2)  # the chain extends past the anchor: fine
    with services.db.transaction(write=False) as s:
        assert audit.verify(s, against=anchor).ok
    # Cut the tail and rewind the head to record 3 (all values the database holds):
    # a plain verify cannot tell, the anchor can.
    t, h = audit.AuditRecord.__table__, audit.AuditHead.__table__
    with services.db.engine.begin() as conn:
        third = conn.execute(sa.select(t.c.hash).where(t.c.seq == 3)).scalar_one()
        conn.execute(t.delete().where(t.c.seq > 3))
        conn.execute(h.update().values(seq=3, hash=third))
    with services.db.transaction(write=False) as s:
        assert audit.verify(s).ok
        v = audit.verify(s, against=anchor)
    assert not v.ok and "before the anchor's record 5" in v.problem
    # An anchor whose digest is not the record's: history was rewritten.
    forged = audit.Anchor(2, "f" * 64)
    with services.db.transaction(write=False) as s:
        v = audit.verify(s, against=forged)
    assert not v.ok and "differs from the anchor" in v.problem


def test_a_chain_from_before_keying_is_sealed_and_still_checked(sqlite_services: Services) -> None:
    services = sqlite_services
    t, h = audit.AuditRecord.__table__, audit.AuditHead.__table__
    prev = audit.GENESIS
    ts = audit.utcnow().replace(microsecond=0)
    with services.db.engine.begin() as conn:  # three records as the old code wrote them
        for seq in (1, 2, 3):
            digest = audit.record_hash(prev, seq, iso(ts), "old", "x", "t", str(seq), {}, None)
            conn.execute(
                t.insert().values(
                    seq=seq,
                    ts=ts.replace(tzinfo=None),
                    actor="old",
                    action="x",
                    object_type="t",
                    object_id=str(seq),
                    detail={},
                    prev_hash=prev,
                    hash=digest,
                )
            )
            prev = digest
        conn.execute(h.update().values(seq=3, hash=prev))
    with services.db.transaction(write=False) as s:
        assert "no record is keyed" in audit.verify(s).problem
    with services.db.transaction() as s:
        assert audit.ensure_keyed(s) is True
        assert audit.ensure_keyed(s) is False  # once
    with services.db.transaction(write=False) as s:
        v = audit.verify(s)
    assert v.ok and v.records == 4 and v.legacy == 3
    _rewrite_plain(services, 2, {2: {"forged": True}}, upto=3)  # the old part, rehashed
    with services.db.transaction(write=False) as s:
        v = audit.verify(s)
    assert not v.ok and v.problem == "record 4 does not follow record 3"
    _rewrite_plain(services, 2, {2: {"forged": True}})  # the keyed seal rehashed as well
    with services.db.transaction(write=False) as s:
        assert "no record is keyed" in audit.verify(s).problem


def test_cli_audit_anchor_and_verify_against_it(tmp_path: Path) -> None:
    """`vigia audit anchor` runs as a real process, the other verbs in this one
    (tests/vigia_cli.py; tests/test_core.py runs `vigia audit verify` as a process)."""
    data = tmp_path / "data"
    assert in_process(data, "entity", "add", "min-x", "--name", "Ministerio X").returncode == 0
    r = _vigia(data, "audit", "anchor")
    assert r.returncode == 0, r.stderr
    anchor = r.stdout.strip()
    seq, digest = anchor.split(":")
    assert int(seq) >= 1 and len(digest) == 64
    assert in_process(data, "entity", "add", "min-y", "--name", "Ministerio Y").returncode == 0
    ok = in_process(data, "audit", "verify", "--anchor", anchor)
    assert ok.returncode == 0 and "holds the anchor" in ok.stdout, ok.stderr
    bad = in_process(data, "audit", "verify", "--anchor", f"{seq}:{'0' * 64}")
    assert bad.returncode == 1 and "differs from the anchor" in bad.stderr
    junk = in_process(data, "audit", "verify", "--anchor", "nope")
    assert junk.returncode == 2 and "SEQ:DIGEST" in junk.stderr and "Traceback" not in junk.stderr


# -- 6. webhook targets ------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.216.34/hook",  # http, not allowed
        "https://127.0.0.1/hook",
        "https://localhost:8443/hook",
        "https://10.0.0.7/hook",
        "https://192.168.1.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.0.1/hook",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[fe80::1]/hook",
        "https://224.0.0.1/hook",
        "https://0.0.0.0/hook",
        "https://user:pw@93.184.216.34/hook",
        "ftp://93.184.216.34/hook",
    ],
)
def test_webhook_targets_must_be_public_https(url: str) -> None:
    with pytest.raises(TargetError):
        TargetPolicy().check(url)
    with pytest.raises(TargetError):
        TargetPolicy().resolve(url)


def test_an_admin_allow_list_opens_named_networks_only() -> None:
    TargetPolicy().check("https://93.184.216.34/hook")  # public: fine
    lab = TargetPolicy(allow_http=True, allow_networks=("127.0.0.0/8",))
    assert lab.resolve("http://127.0.0.1:9/x").address == "127.0.0.1"
    with pytest.raises(TargetError):
        lab.check("http://10.0.0.7/x")  # not on the list


@pytest.fixture
def receiver() -> Iterator[tuple[int, list[dict[str, str]]]]:
    got: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            got.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_port, got
    finally:
        server.shutdown()


def _notice_to(services: Services, entity: str) -> None:
    """A new incident (reported, no traffic needed) and its notice queued to the entity."""
    from incidents.service import open_incident

    with services.db.transaction() as s:
        inc = open_incident(s, services.policy, "test", title="Prueba")
        assert services.notify(s, inc.id, "test", [entity]) >= 1


def test_an_entity_token_cannot_point_its_webhook_at_the_centre(
    services: Services, receiver: tuple[int, list[dict[str, str]]]
) -> None:
    port, got = receiver
    client = TestClient(create_app(services))
    with services.db.transaction() as s:
        Registry.add(s, "ent-a", "Entidad A", "central", [], [], "test")
    a = bearer(make_token(services, Role.ENTITY, "ent-a"))
    for url in (f"http://127.0.0.1:{port}/x", f"https://127.0.0.1:{port}/x", "https://[::1]/x"):
        r = client.put(
            "/api/v1/entities/ent-a/contacts",
            json={"webhook_url": url, "webhook_secret": SECRET},
            headers=a,
        )
        assert r.status_code == 422 and "webhook" in r.json()["detail"], r.text
    # A row written around the API (or before this check) is refused at send time.
    with services.db.transaction() as s:
        row = s.get(EntityRow, "ent-a")
        assert row is not None
        row.webhook_url = f"http://127.0.0.1:{port}/x"
        row.webhook_secret = keys.seal(s, SECRET, "entities.webhook_secret:ent-a")
    _notice_to(services, "ent-a")
    with services.db.transaction() as s:
        assert notify.deliver(s, None, contact_book, services.webhook_targets) == (0, 1)
    assert got == []


def test_send_time_resolves_once_checks_and_connects_to_that_address(
    tmp_path: Path,
    receiver: tuple[int, list[dict[str, str]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port, got = receiver
    services = build(
        load_settings(
            data_dir=tmp_path / "d", webhook_allow_http=True, webhook_allow_networks=["127.0.0.0/8"]
        )
    )
    real = socket.getaddrinfo
    answers = iter(["203.0.113.10", "127.0.0.1", "203.0.113.10"])  # set, send, (a 2nd lookup)

    def rebinding(host: Any, *args: Any, **kw: Any) -> Any:
        if host == "hook.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    try:
        with services.db.transaction() as s:
            Registry.add(s, "ent-a", "Entidad A", "central", [], [], "test")
            # 203.0.113.0/24 is documentation space, not public: the set-time check refuses.
            with pytest.raises(Exception, match="non-public"):
                Registry.set_contacts(
                    s, "ent-a", [], "http://hook.test/x", SECRET, "t", services.webhook_targets
                )
        answers = iter(["127.0.0.1", "203.0.113.10"])
        with services.db.transaction() as s:
            Registry.set_contacts(
                s, "ent-a", [], f"http://hook.test:{port}/x", SECRET, "t", services.webhook_targets
            )
        answers = iter(["127.0.0.1", "203.0.113.10"])  # a second lookup would go nowhere
        _notice_to(services, "ent-a")
        with services.db.transaction() as s:
            assert notify.deliver(s, None, contact_book, services.webhook_targets) == (1, 0)
        (headers,) = got
        assert headers["host"] == f"hook.test:{port}"  # the name travels, the address is pinned
        # The name now resolves to a non-allowed address: refused at send time.
        answers = iter(["10.9.9.9"])
        _notice_to(services, "ent-a")
        with services.db.transaction() as s:
            assert notify.deliver(s, None, contact_book, services.webhook_targets) == (0, 1)
        assert len(got) == 1
    finally:
        services.close()


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


def test_an_entity_changing_its_webhook_is_audited_and_told_to_the_cert(tmp_path: Path) -> None:
    inbox, port = _Inbox(), free_port()
    ctl = Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    services = build(
        load_settings(
            data_dir=tmp_path / "d",
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_from="vigia@cert.gob.bo",
            cert_email="guardia@cert.gob.bo",
        )
    )
    try:
        client = TestClient(create_app(services))
        with services.db.transaction() as s:
            Registry.add(s, "ent-a", "Entidad A", "central", [], [], "test")
        a = bearer(make_token(services, Role.ENTITY, "ent-a"))
        body = {"webhook_url": "https://93.184.216.34/hook", "webhook_secret": SECRET}
        r = client.put("/api/v1/entities/ent-a/contacts", json=body, headers=a)
        assert r.status_code == 200, r.text
        with services.db.transaction(write=False) as s:
            rec = s.execute(
                sa.select(audit.AuditRecord).where(audit.AuditRecord.action == "entity.webhook")
            ).scalar_one()
        assert rec.detail == {"from": "", "to": "https://93.184.216.34/hook"}
        assert rec.actor.startswith("entity:")
        (mail,) = inbox.messages
        assert mail["To"] == "guardia@cert.gob.bo" and "ent-a" in mail["Subject"]
        assert "https://93.184.216.34/hook" in mail.get_content()
        # The same contacts again: no change, no notice.
        client.put("/api/v1/entities/ent-a/contacts", json=body, headers=a)
        assert len(inbox.messages) == 1
    finally:
        services.close()
        ctl.stop()


# -- 7. CSV formula injection ------------------------------------------------------

PAYLOADS = ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_the_csv_helper_escapes_every_formula_start(payload: str) -> None:
    text = csvsafe.rows(["a", "b"], [[payload, 7]]) + csvsafe.dicts(["a"], [{"a": payload}])
    import csv

    cells = [c for row in csv.reader(io.StringIO(text)) for c in row]
    assert ("'" + payload) in cells and payload not in cells
    assert csvsafe.unescape("'" + payload) == payload and csvsafe.unescape("'x") == "'x"


def _cells(text: str) -> list[str]:
    import csv

    return [c for row in csv.reader(io.StringIO(text)) for c in row]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_incident_metrics_and_progress_csv_escape_cells(payload: str) -> None:
    row = metrics.IncidentTimes(1, payload, "P3", payload, payload, payload, 1.0, None, 2, 3, "")
    state = progress.EntityState("e", payload, "central", payload, None, 0.5, payload, None)
    for text in (metrics.to_csv([row]), progress.to_csv([state])):
        cells = _cells(text)
        assert payload not in cells and ("'" + payload) in cells


def test_entity_contact_email_is_escaped_in_the_api_and_cli_exports(tmp_path: Path) -> None:
    data = tmp_path / "data"
    services = build(load_settings(data_dir=data))
    evil = '=HYPERLINK("http://x")@x.bo'
    try:
        with services.db.transaction() as s:
            Registry.add(s, "ent-a", "@Entidad", "central", [], [], "t")
            Registry.set_contacts(
                s, "ent-a", [{"name": "-Oficial", "email": evil, "phone": "+591"}], "", "", "t"
            )
        client = TestClient(create_app(services))
        admin = bearer(make_token(services, Role.ADMIN))
        api = client.get("/api/v1/entities.csv", headers=admin).text
        # The export imports back unchanged: the apostrophes go again.
        again = client.post("/api/v1/entities/import", content=api.encode(), headers=admin)
        assert again.json()["unchanged"] == 1, again.text
        with services.db.transaction(write=False) as s:
            assert Registry.contacts_of(s, "ent-a")[0][0]["email"] == evil
    finally:
        services.close()
    cli = _vigia(data, "entity", "export").stdout
    for text in (api, cli):
        cells = _cells(text)
        assert "'" + evil in cells and evil not in cells
        assert "'@Entidad" in cells and "'-Oficial" in cells and "'+591" in cells


def test_no_csv_is_written_outside_the_helper() -> None:
    root = Path(__file__).resolve().parent.parent
    writers = [
        str(p.relative_to(root))
        for pkg in ("core", "api", "certification", "correlator", "incidents", "rules", "vigia")
        for p in (root / pkg).rglob("*.py")
        if "csv.writer" in p.read_text() or "DictWriter" in p.read_text()
    ]
    assert writers == ["core/csvsafe.py"]


# -- 9. a refused restore leaves nothing behind -----------------------------------


def _backup_of(tmp_path: Path) -> Path:
    services = build(load_settings(data_dir=tmp_path / "src"))
    _fill(services, 3)
    services.close()
    out = tmp_path / "b.tar.gz"
    backup(tmp_path / "src", "", out)
    return out


def _repack(src: Path, out: Path, change: Any) -> None:
    """The archive with its database passed through `change(path)`; `change` may
    return a new manifest digest (the attacker who recomputes it)."""
    import hashlib
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, tarfile.open(src) as tar:
        tar.extractall(tmp, filter="data")
        db = Path(tmp) / "vigia.db"
        if change(db):
            m = json.loads((Path(tmp) / "manifest.json").read_text())
            m["database_sha256"] = hashlib.sha256(db.read_bytes()).hexdigest()
            (Path(tmp) / "manifest.json").write_text(json.dumps(m))
        with tarfile.open(out, "w:gz") as new:
            for name in sorted(os.listdir(tmp)):
                new.add(Path(tmp) / name, arcname=name)


def _tamper_audit(db: Path) -> bool:
    import sqlite3

    con = sqlite3.connect(db)
    con.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    con.commit()
    con.close()
    return True


@pytest.mark.parametrize("how", ["damaged", "chain"])
def test_a_refused_restore_leaves_the_data_dir_as_it_was(tmp_path: Path, how: str) -> None:
    good = _backup_of(tmp_path)
    bad = tmp_path / "bad.tar.gz"
    if how == "damaged":  # the database changed, the manifest not
        _repack(good, bad, lambda db: db.write_bytes(db.read_bytes()[:-1] + b"\x01") and False)
    else:  # the chain tampered, the manifest's digest recomputed
        _repack(good, bad, _tamper_audit)
    target = tmp_path / "target"
    with pytest.raises(BackupError, match="damaged" if how == "damaged" else "audit chain"):
        restore(bad, target)
    assert not target.exists() or list(target.iterdir()) == []
    assert [p.name for p in tmp_path.iterdir() if ".restore-" in p.name] == []
    # Forced over an installation: refused, and that installation is untouched.
    restore(good, target)
    before = (target / "vigia.db").read_bytes()
    with pytest.raises(BackupError):
        restore(bad, target, force=True)
    assert (target / "vigia.db").read_bytes() == before
    assert sorted(p.name for p in target.iterdir()) == ["secret_key", "vigia.db"]
    r = _vigia(target, "restore", str(bad), "--force")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert in_process(target, "audit", "verify").returncode == 0  # (the refusal: a process)


# -- 10. file modes and sealed secrets ---------------------------------------------


def _mode(p: Path) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_the_data_dir_and_its_files_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # a usual umask: files would be 0644 without care
    try:
        data = tmp_path / "data"
        services = build(load_settings(data_dir=data))
        _fill(services, 1)
        with services.db.engine.connect() as conn:  # WAL and SHM exist while open
            conn.exec_driver_sql("SELECT 1")
            assert _mode(data) == 0o700
            for name in ("vigia.db", "vigia.db-wal", "vigia.db-shm", "secret_key"):
                assert _mode(data / name) == 0o600, name
        out = tmp_path / "backup.tar.gz"
        backup(data, "", out)
        services.close()
        assert _mode(out) == 0o600
        with tarfile.open(out) as tar:
            assert {m.name: m.mode for m in tar.getmembers() if m.isfile()}["secret_key"] == 0o600
        # A loose data dir of an older install is tightened at the next start.
        os.chmod(data, 0o755)
        os.chmod(data / "vigia.db", 0o644)
        build(load_settings(data_dir=data)).close()
        assert _mode(data) == 0o700 and _mode(data / "vigia.db") == 0o600
        # A restore lands private too.
        restore(out, tmp_path / "r")
        assert _mode(tmp_path / "r") == 0o700
        assert _mode(tmp_path / "r" / "vigia.db") == _mode(tmp_path / "r" / "secret_key") == 0o600
    finally:
        os.umask(old)


def test_the_server_process_writes_private_files(tmp_path: Path) -> None:
    """`vigia up` sets the process umask: what it creates later is private as well."""
    data, port = tmp_path / "data", free_port()
    env = {**os.environ, "VIGIA_DATA_DIR": str(data)}
    env.pop("VIGIA_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "vigia", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "escuchando" in line:
                break
        else:
            pytest.fail("the server did not start")
        for name in ("vigia.db", "vigia.db-wal", "vigia.db-shm", "secret_key"):
            assert _mode(data / name) == 0o600, name
        assert _mode(data) == 0o700
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_webhook_secrets_are_sealed_at_rest(services: Services) -> None:
    with services.db.transaction() as s:
        Registry.add(s, "ent-a", "Entidad A", "central", [], [], "t")
        Registry.add(s, "ent-b", "Entidad B", "central", [], [], "t")
        Registry.set_contacts(s, "ent-a", [], "https://93.184.216.34/h", SECRET, "t")
    t = EntityRow.__table__
    with services.db.engine.connect() as conn:
        raw = conn.execute(sa.select(t.c.webhook_secret).where(t.c.id == "ent-a")).scalar_one()
    assert raw.startswith("enc1:") and SECRET not in raw
    with services.db.transaction(write=False) as s:
        assert Registry.contacts_of(s, "ent-a")[2] == SECRET
    # Copied onto another entity's row, the sealed value does not open.
    with services.db.engine.begin() as conn:
        conn.execute(t.update().where(t.c.id == "ent-b").values(webhook_secret=raw))
    with services.db.transaction(write=False) as s, pytest.raises(keys.KeysError):
        Registry.contacts_of(s, "ent-b")
    # A secret stored in clear by an older version is sealed at the next start.
    with services.db.engine.begin() as conn:
        conn.execute(t.update().where(t.c.id == "ent-b").values(webhook_secret="clear-secret-0123"))
    again = build(services.settings)
    try:
        with again.db.engine.connect() as conn:
            raw_b = conn.execute(
                sa.select(t.c.webhook_secret).where(t.c.id == "ent-b")
            ).scalar_one()
        assert raw_b.startswith("enc1:") and "clear-secret" not in raw_b
        with again.db.transaction(write=False) as s:
            assert Registry.contacts_of(s, "ent-b")[2] == "clear-secret-0123"
    finally:
        again.close()


# -- 13. SMTP, a taken port, token ids ---------------------------------------------


def test_smtp_credentials_without_starttls_are_refused(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("hunter2")
    with pytest.raises(SettingsError, match="VIGIA_SMTP_STARTTLS"):
        load_settings(smtp_host="mx", smtp_user="u", smtp_password_file=pw)
    assert load_settings(smtp_host="mx", smtp_user="u", smtp_starttls=True).smtp_starttls
    assert load_settings(smtp_user="u", smtp_plain_auth=True).smtp_plain_auth  # said so
    r = _vigia(tmp_path / "d", "serve", "--port", str(free_port()), VIGIA_SMTP_USER="u")
    assert r.returncode == 2 and "VIGIA_SMTP_STARTTLS" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    # A Mailer built by hand is refused before it connects; the server hears nothing.
    inbox, port = _Inbox(), free_port()
    ctl = Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        mailer = notify.Mailer("127.0.0.1", port, "c@x", user="u", password_file=pw)
        with pytest.raises(RuntimeError, match="STARTTLS"):
            notify.send_mail(mailer, "a@x.bo", "s", "t")
        # STARTTLS asked of a server that does not offer it: no AUTH, no mail.
        tls = notify.Mailer("127.0.0.1", port, "c@x", True, "u", pw)
        with pytest.raises(Exception, match="STARTTLS"):
            notify.send_mail(tls, "a@x.bo", "s", "t")
        assert inbox.messages == []
    finally:
        ctl.stop()


def test_a_taken_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        port = busy.getsockname()[1]
        r = _vigia(tmp_path / "d", "up", "--port", str(port), "--no-demo")
    finally:
        busy.close()
    assert r.returncode == 2, r.stderr
    assert "ya está en uso" in r.stderr and str(port) in r.stderr
    assert "escuchando" not in r.stderr and "Traceback" not in r.stderr


def test_token_create_names_its_id_and_token_list_never_shows_the_token(tmp_path: Path) -> None:
    """`vigia token list` runs as a real process, the other verbs in this one
    (tests/vigia_cli.py; tests/test_core.py runs `vigia token create` as a process)."""
    data = tmp_path / "d"
    assert in_process(data, "entity", "add", "min-x", "--name", "X").returncode == 0
    made = in_process(
        data, "token", "create", "--role", "entity", "--entity", "min-x", "--name", "ofi"
    )
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("vga_") and made.stdout.count("\n") == 1  # stdout: the token alone
    token_id = made.stderr.split("token id ")[1].split()[0]
    other = in_process(data, "token", "create", "--role", "analyst").stderr.split("token id ")[1]
    assert in_process(data, "token", "revoke", other.split()[0]).returncode == 0
    listed = _vigia(data, "token", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split("\t") == ["id", "role", "entity", "name", "created", "revoked"]
    row = next(line.split("\t") for line in lines if line.startswith(token_id))
    assert row[1:4] == ["entity", "min-x", "ofi"] and row[4].startswith("20") and row[5] == "-"
    assert other.split()[0] not in listed.stdout  # revoked: only with --all
    everything = in_process(data, "token", "list", "--all").stdout
    assert other.split()[0] in everything
    services = build(load_settings(data_dir=data))
    digest = services.tokens.digest(token)
    services.close()
    for text in (listed.stdout, everything):
        assert token not in text and token[4:20] not in text and digest not in text
