"""External reports in: real-format samples (Shadowserver report types written from
the published schema, abuse.ch feeds) through the watched folder, an IMAP mailbox
(dovecot on loopback), a polled URL and `vigia reports import`; the entities,
incidents and e-mails (to a loopback SMTP server) that come out, the unattributed
list, and the effect on certification."""

from __future__ import annotations

import imaplib
import shutil
import threading
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from functools import partial
from http.server import HTTPServer, SimpleHTTPRequestHandler
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from certification.policy import CertPolicy
from core.settings import load_settings
from incidents import notify, taxonomy
from incidents.reports import formats
from incidents.reports.hosts import unattributed
from incidents.reports.models import ReportFindingRow
from tests.mailbox import Inbox, smtp_server
from tests.reports_helpers import (
    IMAP_PASSWORD,
    IMAP_USER,
    SAMPLES,
    attachment,
    constituency,
    dovecot,
    report_incidents,
)
from vigia import reports
from vigia.cli import app
from vigia.wiring import Services, build, contact_book, open_incidents

DAY = "2026-12-01"
# What the samples hold, entity by entity: (entity, report kind, day) → priority.
EXPECTED = {
    ("min-salud", "scan_rdp", DAY): "P2",
    ("min-salud", "scan6_rdp", DAY): "P2",
    ("min-salud", "scan_http_vulnerable", DAY): "P1",
    ("min-salud", "scan_ntp", DAY): "P3",
    ("min-salud", "compromised_website", DAY): "P1",  # by its http_host: the address is no one's
    ("min-salud", "urlhaus", DAY): "P2",  # http://198.51.100.20:8080/…
    ("min-salud", "threatfox", DAY): "P1",  # a C2 (critical) and a payload URL (high)
    ("hospital-central", "scan_rdp", DAY): "P2",  # 198.51.100.200: the /25 inside the /24
    ("min-educacion", "scan_rdp", DAY): "P2",
    ("min-educacion", "event4_sinkhole", DAY): "P1",
    ("min-educacion", "urlhaus", DAY): "P2",  # by name: descargas.educacion.example.net
    ("min-educacion", "feodo", "2026-11-30"): "P1",
}
UNATTRIBUTED = {
    ("scan_rdp", "192.0.2.33"),
    ("scan_http_vulnerable", "203.0.113.250"),  # outside the ministry's /25
    ("event4_sinkhole", "192.0.2.50"),
    ("urlhaus", "https://malware.example.com/a.zip"),
    ("feodo", "192.0.2.77"),
}
CONTACT = {
    "min-salud": "seguridad@salud.example.org",
    "hospital-central": "so@hospital.example.org",
    "min-educacion": "cert@educacion.example.net",
}


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    """A real SMTP server (aiosmtpd) on loopback."""
    with smtp_server() as running:
        yield running


@pytest.fixture
def centre(tmp_path: Path, db_url: str, smtp: tuple[int, Inbox]) -> Iterator[Services]:
    s = build(
        load_settings(
            data_dir=tmp_path / "data",
            database_url=db_url,
            smtp_host="127.0.0.1",
            smtp_port=smtp[0],
            reports_dir=tmp_path / "buzon",
        )
    )
    constituency(s)
    yield s
    s.close()


def _drop_samples(folder: Path) -> None:
    folder.mkdir(exist_ok=True)
    for f in SAMPLES.iterdir():
        shutil.copy(f, folder / f.name)


def _deliver(services: Services) -> tuple[int, int]:
    with services.db.transaction() as s:
        return notify.deliver(s, services.mailer, contact_book)


def test_folder_intake_entities_incidents_and_mails(
    centre: Services, smtp: tuple[int, Inbox]
) -> None:
    folder = centre.settings.reports_dir
    assert folder is not None
    _drop_samples(folder)
    total = reports.reports_job(centre)  # the scheduled job: the watched folder
    # Every file taken in and moved aside.
    assert sorted(p.name for p in (folder / "procesados").iterdir()) == sorted(
        p.name for p in SAMPLES.iterdir()
    )
    assert [p for p in folder.iterdir() if p.is_file()] == []
    assert total.records == 19 and total.duplicates == 1 and total.ignored == 1
    assert total.unattributed == 5 and total.attributed == 13
    assert total.entities == {"min-salud", "hospital-central", "min-educacion"}
    assert set(total.unattributed_sample) == UNATTRIBUTED
    got = report_incidents(centre)
    assert {k: inc.priority for k, inc in got.items()} == EXPECTED
    assert len(total.opened) == len(EXPECTED) and total.updated == []
    hosp = got[("hospital-central", "scan_rdp", DAY)]
    assert hosp.title == "Servicio expuesto: Accessible-RDP — Hospital Central (2026-12-01)"
    assert (hosp.rsit_class, hosp.rsit_type, hosp.tlp) == (
        "vulnerable",
        "vulnerable-system",
        "amber",
    )
    # The unattributed findings are kept for the CERT.
    with centre.db.transaction(write=False) as s:
        assert {(r.kind, r.value) for r in unattributed(s)} == UNATTRIBUTED
        sink = s.execute(
            select(ReportFindingRow).where(ReportFindingRow.ip == "203.0.113.7")
        ).scalar_one()
    doc = sink.doc
    assert (
        doc["event"]["kind"] == "event"
        and doc["event"]["dataset"] == "shadowserver.event4_sinkhole"
    )
    assert doc["organization"] == {"id": "min-educacion", "name": "Ministerio de Educación"}
    assert doc["source"]["ip"] == "203.0.113.7" and doc["destination"]["port"] == 80
    assert doc["threat"]["software"]["name"] == "andromeda"
    assert doc["vigia"]["rsit"] == {"class": "malicious-code", "type": "infected-system"}

    # One e-mail per incident to the entity's officer, with its hosts attached.
    assert _deliver(centre) == (len(EXPECTED), 0)
    mails = smtp[1].messages
    assert sorted(m["To"] for m in mails) == sorted(CONTACT[e] for e, _, _ in EXPECTED)
    # (encoded-word folding may double a space on the way: compare words)
    by_subject = {" ".join(m["Subject"].split()): m for m in mails}
    subject = (
        f"[TLP:AMBER] Incidente #{hosp.id} (P2): "
        "Servicio expuesto: Accessible-RDP — Hospital Central (2026-12-01)"
    )
    assert subject in by_subject, sorted(by_subject)
    mail = by_subject[subject]
    body = mail.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "Equipos afectados: 1" in text and "El escritorio remoto (RDP)" in text
    name, csv_text = attachment(mail)
    assert name == f"vigia-scan_rdp-incidente-{hosp.id}.csv"
    assert csv_text.splitlines() == [
        "fecha_utc,ip,nombre,puerto,valor,informe,severidad,detalle",
        "2026-12-01 02:14:40,198.51.100.200,,3389,198.51.100.200,scan_rdp,high,rdp",
    ]
    # The ministry's RDP list: its one host, the repeat within the window left out.
    salud = got[("min-salud", "scan_rdp", DAY)]
    _, salud_csv = attachment(next(m for m in mails if f"#{salud.id} " in m["Subject"]))
    assert salud_csv.splitlines()[1:] == [
        "2026-12-01 02:11:09,198.51.100.10,escritorio.salud.example.org,3389,198.51.100.10,"
        "scan_rdp,high,rdp"
    ]
    tf = got[("min-salud", "threatfox", DAY)]
    tf_mail = next(m for m in mails if f"#{tf.id} " in m["Subject"])
    assert "servidores de control" in tf_mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert [line.split(",")[1:3] for line in attachment(tf_mail)[1].splitlines()[1:]] == [
        ["198.51.100.30", ""],
        ["", "cdn.salud.example.org"],
    ]

    # The same reports again (mailed twice, say): all duplicates, nothing new.
    _drop_samples(folder)
    again = reports.reports_job(centre)
    assert (
        again.records == 19 and again.duplicates == 19 and again.opened == [] and again.notices == 0
    )
    assert _deliver(centre) == (0, 0)


def test_a_later_report_of_the_day_updates_the_incident(centre: Services) -> None:
    """One incident per entity, kind and day: a second file adds to it, raises its
    priority when worse, and notifies again with the whole list."""
    src = SAMPLES / "2026-12-01-scan_rdp-bolivia-geo.csv"
    first = reports.import_paths(centre, [src])
    inc_id = report_incidents(centre)[("min-salud", "scan_rdp", DAY)].id
    later = centre.settings.data_dir / "2026-12-01-scan_rdp-bolivia-geo-2.csv"
    lines = src.read_text().splitlines()
    later.write_text(
        lines[0]
        + "\n"
        + lines[1].replace("198.51.100.10", "198.51.100.14").replace('"high"', '"critical"')
        + "\n"
    )
    second = reports.import_paths(centre, [later])
    assert second.opened == [] and second.updated == [inc_id] and second.notices == 1
    inc = report_incidents(centre)[("min-salud", "scan_rdp", DAY)]
    assert inc.id == inc_id and inc.priority == "P1" and first.opened
    with centre.db.transaction(write=False) as s:
        payloads = [
            n.payload
            for n in s.execute(select(notify.NotificationRow)).scalars()
            if n.incident_id == inc_id
        ]
    assert [p["report"]["hosts"] for p in payloads] == [1, 2]


def test_open_findings_count_for_certification(centre: Services, tmp_path: Path) -> None:
    """High and critical findings open P2/P1 incidents, which certification already
    counts as blocking (after its grace period); the levels are configurable."""
    reports.import_paths(centre, [SAMPLES])
    policy = CertPolicy(incident_block_days=7)
    later = report_incidents(centre)[("min-educacion", "scan_rdp", DAY)].created_at + timedelta(
        days=8
    )
    with centre.db.transaction(write=False) as s:
        blocking = policy.blocking(open_incidents(s, "min-educacion"), later)
        assert sorted(i.priority for i in blocking) == ["P1", "P1", "P2", "P2"]
    # An installation that counts only critical findings: high ones become P3.
    mild = build(
        load_settings(
            data_dir=tmp_path / "mild",
            database_url="",
            reports_ncciss={"high": 2},
        )
    )
    try:
        constituency(mild)
        reports.import_paths(mild, [SAMPLES], notify=False)
        with mild.db.transaction(write=False) as s:
            blocking = policy.blocking(open_incidents(s, "min-educacion"), later)
        assert sorted(i.priority for i in blocking) == ["P1", "P1"]
    finally:
        mild.close()


def test_imap_mailbox_intake(centre: Services) -> None:
    """A report mail in a real IMAP mailbox: its zip attachment taken in, the mail
    marked seen; a mail whose attachment no format takes is flagged for a person."""
    import io
    import zipfile

    with dovecot() as port:
        box = reports.mailbox.Mailbox("127.0.0.1", port, IMAP_USER, IMAP_PASSWORD, tls=False)
        good = EmailMessage()
        good["From"], good["To"] = "autoreports@shadowserver.example", IMAP_USER
        good["Subject"] = "Shadowserver report: 2026-12-01"
        good.set_content("Reports attached.")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for name in (
                "2026-12-01-scan_rdp-bolivia-geo.csv",
                "2026-12-01-event4_sinkhole-bolivia-geo.csv",
            ):
                z.write(SAMPLES / name, name)
        good.add_attachment(
            buf.getvalue(), maintype="application", subtype="zip", filename="reports.zip"
        )
        bad = EmailMessage()
        bad["From"], bad["To"], bad["Subject"] = "x@example.com", IMAP_USER, "otra cosa"
        bad.set_content("?")
        bad.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="cosa.csv")
        imap = imaplib.IMAP4("127.0.0.1", port)
        imap.login(IMAP_USER, IMAP_PASSWORD)
        for m in (good, bad):
            imap.append("INBOX", None, None, m.as_bytes())
        imap.logout()

        total = reports.mailbox_once(centre, box)
        assert total.records == 7 and total.duplicates == 1 and total.unattributed == 2
        assert set(report_incidents(centre)) == {
            ("min-salud", "scan_rdp", DAY),
            ("hospital-central", "scan_rdp", DAY),
            ("min-educacion", "scan_rdp", DAY),
            ("min-educacion", "event4_sinkhole", DAY),
        }
        imap = imaplib.IMAP4("127.0.0.1", port)
        imap.login(IMAP_USER, IMAP_PASSWORD)
        imap.select("INBOX")
        assert imap.uid("SEARCH", "UNSEEN")[1] == [b""]
        flagged = imap.uid("SEARCH", "FLAGGED")[1][0].split()
        assert len(flagged) == 1
        imap.logout()
        assert reports.mailbox_once(centre, box).records == 0  # nothing unseen is left


def test_polled_url_intake(centre: Services) -> None:
    handler = partial(SimpleHTTPRequestHandler, directory=str(SAMPLES))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/feodo-ipblocklist.csv"
        got = reports.url_once(centre, url)
        assert (got.records, got.attributed, got.unattributed) == (2, 1, 1)
        with pytest.raises(formats.FormatError, match="404"):
            reports.url_once(centre, url.replace("feodo", "nada"))
    finally:
        server.shutdown()
        server.server_close()
    assert set(report_incidents(centre)) == {("min-educacion", "feodo", "2026-11-30")}


def test_generic_csv_with_a_mapping(centre: Services, tmp_path: Path) -> None:
    mapping = tmp_path / "csirt-vecino.json"
    mapping.write_text(
        '{"kind": "csirt_vecino_bots", "provider": "csirt-vecino", "title": "Bots vistos",'
        ' "rsit": ["malicious-code", "infected-system"], "severity": "critical",'
        ' "family": "compromised", "host": "direccion",'
        ' "columns": {"cuando": "@timestamp", "direccion": "source.ip",'
        ' "bot": "threat.software.name"}}'
    )
    data = tmp_path / "bots.csv"
    data.write_text("cuando,direccion,bot\n2026-12-01T10:00:00Z,203.0.113.66,mirai\n")
    got = reports.import_paths(centre, [data], mapping=mapping)
    assert got.attributed == 1
    inc = report_incidents(centre)[("min-educacion", "csirt_vecino_bots", DAY)]
    assert inc.priority == "P1" and inc.rsit_type == "infected-system"


def test_cli_import_prints_what_came_in_and_refuses_a_bad_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIGIA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VIGIA_DATABASE_URL", "")
    s = build(load_settings())
    constituency(s)
    s.close()
    runner = CliRunner()
    bad = tmp_path / "notas.csv"
    bad.write_text("a,b\n1,2\n")
    r = runner.invoke(app, ["reports", "import", str(SAMPLES / "feodo-ipblocklist.csv"), str(bad)])
    assert r.exit_code == 2
    assert r.stderr.strip() == (
        "vigia: notas.csv: formato no reconocido; use --format NOMBRE o --mapping"
    )
    r = runner.invoke(app, ["reports", "import", str(SAMPLES / "urlhaus-csv_online.txt")])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [
        "registros: 3 (duplicados 0, sin equipo 0, ilegibles 0)",
        "entidades: 2 (min-educacion, min-salud)",
        "incidentes: 2 abiertos (#1, #2), 0 actualizados",
        "sin atribuir: 1",
        "  urlhaus\thttps://malware.example.com/a.zip",
        "notificaciones en cola: 2",
    ]
    # The refused run took nothing in: feodo's incident is not there.
    r = runner.invoke(app, ["reports", "unattributed"])
    assert r.exit_code == 0
    assert [line.split(",")[4] for line in r.stdout.splitlines()[1:]] == [
        "https://malware.example.com/a.zip"
    ]
    r = runner.invoke(
        app,
        [
            "reports",
            "import",
            "--format",
            "shadowserver:scan_rdp",
            str(SAMPLES / "feodo-ipblocklist.csv"),
        ],
    )
    assert r.exit_code == 2 and "la cabecera no tiene la columna del equipo" in r.stderr


def test_the_vocabulary_holds_together() -> None:
    """Every Shadowserver report type has an RSIT class/type MISP's taxonomy knows,
    a severity and advice; the feeds too."""
    rsit = taxonomy.rsit()
    advice = formats.advice()
    for name in formats.names():
        fmt = formats.by_name(name)
        rsit.check(*fmt.rsit)
        assert fmt.severity in formats.SEVERITIES
        assert fmt.family in advice["families"], name
    assert len(formats.shadowserver()["reports"]) >= 170
    assert formats.recognise("2026-12-01-scan_rdp-bolivia-geo.csv", []).kind == "scan_rdp"
    with pytest.raises(formats.FormatError, match="no dice su tipo"):
        formats.recognise("informe.csv", ["timestamp", "ip", "severity", "port"])


def test_the_scheduler_runs_the_intake_under_its_lease(centre: Services) -> None:
    from vigia import scheduler

    folder = centre.settings.reports_dir
    assert folder is not None
    folder.mkdir()
    shutil.copy(SAMPLES / "feodo-ipblocklist.csv", folder)
    (folder / "notas.csv").write_text("a,b\n1,2\n")
    every = timedelta(minutes=centre.settings.reports_minutes)
    assert scheduler.run_job(centre, "reports", scheduler.reports_job, every, True) == "ok"
    assert [p.name for p in (folder / "procesados").iterdir()] == ["feodo-ipblocklist.csv"]
    assert [p.name for p in (folder / "rechazados").iterdir()] == ["notas.csv"]
    assert set(report_incidents(centre)) == {("min-educacion", "feodo", "2026-11-30")}
    sched = scheduler.start(centre)
    try:
        assert sched.get_job("reports") is not None
    finally:
        sched.shutdown(wait=False)


def test_a_host_list_is_the_csv_the_csv_module_writes() -> None:
    """The notice's host list, built line by line as findings come, is the same text
    as the escaped rows through the csv module: quotes, commas, line breaks and
    formula starts in the free text included."""
    from datetime import UTC, datetime

    from core import csvsafe
    from incidents.reports.hosts import CSV_HEADER, HostList

    at = datetime(2026, 12, 1, 2, 14, 40, tzinfo=UTC)
    hosts = [
        (at, "198.51.100.7", None, 3389, "198.51.100.7", "high", "rdp"),
        (at, None, "a,b.example.org", None, "http://a,b.example.org/x", "low", 'say "hi"'),
        (at, "2001:db8::1", "=cmd.example.org", 80, "-x", "critical", "line\nbreak\r"),
        (at, None, "n.example.org", 0, '"', "medium", "+1,@2"),
    ]
    got = HostList("scan_rdp")
    for h in hosts:
        got.add(*h)
    expected = csvsafe.rows(
        CSV_HEADER,
        [
            ("2026-12-01 02:14:40", ip or "", name or "", "" if port is None else port, value,
             "scan_rdp", sev, detail)
            for _, ip, name, port, value, sev, detail in hosts
        ],
    )  # fmt: skip
    assert got.text() == expected and got.count == 4


def test_a_port_past_the_integer_column_is_never_stored_cut(
    centre: Services, tmp_path: Path
) -> None:
    """PostgreSQL takes the findings by binary COPY, which would keep only a port's low
    32 bits: a port past the column's range is refused as the text COPY was, and
    nothing is taken in; SQLite keeps it as it came."""
    sample = SAMPLES / "2026-12-01-scan_rdp-bolivia-geo.csv"
    head, first = sample.read_text().splitlines()[:2]
    bad = tmp_path / sample.name
    bad.write_text(head + "\n" + first.replace('"3389"', '"99999999999"') + "\n")
    if centre.db.engine.dialect.name == "sqlite":
        assert reports.import_paths(centre, [bad]).records == 1
        with centre.db.transaction(write=False) as s:
            assert s.execute(select(ReportFindingRow.port)).scalars().all() == [99999999999]
        return
    import psycopg

    with pytest.raises(psycopg.errors.NumericValueOutOfRange, match="99999999999"):
        reports.import_paths(centre, [bad])
    with centre.db.transaction(write=False) as s:
        assert s.execute(select(ReportFindingRow.id)).all() == []
