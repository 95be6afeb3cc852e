"""Zeek intel read whole: meta.whitelist, meta.if_in and every other meta.* column.

Follows Zeek's own tests (scripts/policy/frameworks/intel/whitelisting.zeek, whose
two intel files are rebuilt here, and notice.zeek for if_in) over the same real
trace, wikipedia.pcap; the expected counts come from Zeek's logs of that trace.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.clock import iso
from core.settings import load_settings
from core.tokens import Role
from correlator.index import IndicatorIndex
from correlator.matcher import Matcher
from correlator.whitelist import Suppressed
from rules.indicator import Indicator
from rules.sources import IndicatorFileError
from rules.sources.zeek import load
from sensors.engine import Sensor, SensorConfig
from sensors.pcapfile import read_packets
from tests.conftest import bearer, corpus, make_token
from tests.factories import observation
from tests.test_scan import alerts_of, vigia
from tests.zeeklog import read_log
from vigia.wiring import Services, build

UPLOAD, META = "upload.wikimedia.org", "meta.wikimedia.org"
CLIENT, SERVER = "141.142.220.118", "208.80.152.3"

# Zeek's whitelisting test: the first file lists two names, the second (another
# source) marks one of them whitelisted.
INTEL = (
    "#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\tmeta.url\n"
    f"{UPLOAD}\tIntel::DOMAIN\tsource1\tsomehow bad\thttp://some-data-distributor.com/1\n"
    f"{META}\tIntel::DOMAIN\tsource1\talso bad\thttp://some-data-distributor.com/1\n"
)
WHITELIST = (
    "#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\tmeta.whitelist\tmeta.url\n"
    f"{META}\tIntel::DOMAIN\tsource2\talso bad\tT\thttp://some-data-distributor.com/1\n"
)


@pytest.fixture
def wikipedia() -> Path:
    return corpus("zeek-traces", "dns-http", "opt.basic", "pcap", "wikipedia.pcap")


def seen_by_zeek(name: str) -> dict[str, int]:
    """Where Zeek saw a name in the trace: DNS::IN_REQUEST and HTTP::IN_HOST_HEADER."""
    base = corpus("zeek-traces", "dns-http", "opt.basic", "baseline")
    return {
        "dns.question.name": sum(r["query"] == name for r in read_log(base / "dns.log")),
        "url.domain": sum(r["host"] == name for r in read_log(base / "http.log")),
    }


def conns(**where: str) -> int:
    base = corpus("zeek-traces", "dns-http", "opt.basic", "baseline")
    return sum(all(r[k] == v for k, v in where.items()) for r in read_log(base / "conn.log"))


def hits(alerts: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for a in alerts:
        m = a["threat"]["enrichments"][0]["matched"]
        out[(m["atomic"], m["field"])] = out.get((m["atomic"], m["field"]), 0) + a["event"]["count"]
    return out


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text)
    return path


# --- vigia scan over the real trace ------------------------------------------------


def test_a_second_file_whitelisting_a_value_leaves_hits_on_the_others_only(
    tmp_path: Path, wikipedia: Path
) -> None:
    intel, whitelist = write(tmp_path, "intel.dat", INTEL), write(tmp_path, "wl.dat", WHITELIST)
    meta_seen = seen_by_zeek(META)
    assert all(meta_seen.values())  # the whitelisted name is in the trace: a real test

    without = vigia("scan", wikipedia, "-i", intel)
    assert without.returncode == 0, without.stderr
    assert {k: v for k, v in hits(alerts_of(without.stdout)).items() if k[0] == META} == {
        (META, f): n for f, n in meta_seen.items()
    }

    res = vigia("scan", wikipedia, "-i", intel, "-i", whitelist)
    assert res.returncode == 0, res.stderr
    # Zeek's baseline for this test: upload.wikimedia.org in DNS requests and Host
    # headers, nothing for meta.wikimedia.org.
    assert hits(alerts_of(res.stdout)) == {(UPLOAD, f): n for f, n in seen_by_zeek(UPLOAD).items()}
    summary = res.stderr.strip().splitlines()[-1]
    suppressed = sum(meta_seen.values())
    assert f"hits {suppressed} suppressed by whitelist (source2 {suppressed})" in summary
    assert "2 indicators and 1 whitelisted" in summary


def test_a_whitelisted_value_silences_every_type_and_source_of_it(
    tmp_path: Path, wikipedia: Path
) -> None:
    # A MISP-style `domain` (name and subdomains) from a CSV feed: the whitelisted
    # name is kept out, its sibling under the same domain still alerts.
    feed = write(tmp_path, "feed.csv", "type,value,provider\ndomain,wikimedia.org,feed-x\n")
    whitelist = write(tmp_path, "wl.dat", WHITELIST)
    res = vigia("scan", wikipedia, "-i", feed, "-i", whitelist)
    assert res.returncode == 0, res.stderr
    got = hits(alerts_of(res.stdout))
    assert not [k for k in got if k[0] == META]
    assert {k: v for k, v in got.items() if k[0] == UPLOAD} == {
        (UPLOAD, f): n for f, n in seen_by_zeek(UPLOAD).items()
    }
    assert f"suppressed by whitelist (source2 {sum(seen_by_zeek(META).values())})" in res.stderr


def test_if_in_restricts_where_a_hit_counts(tmp_path: Path, wikipedia: Path) -> None:
    # As Zeek's notice.zeek: one indicator restricted to a place, one anywhere.
    intel = write(
        tmp_path,
        "intel.dat",
        "#fields\tindicator\tindicator_type\tmeta.source\tmeta.do_notice\tmeta.if_in\n"
        f"{UPLOAD}\tIntel::DOMAIN\tsrc\tT\tDNS::IN_REQUEST\n"
        f"{SERVER}\tIntel::ADDR\tsrc\tT\tConn::IN_RESP\n"
        f"{CLIENT}\tIntel::ADDR\tsrc\tT\tConn::IN_RESP\n"  # always the originator
        f"{META}\tIntel::DOMAIN\tsrc\tT\tIntel::IN_ANYWHERE\n",
    )
    res = vigia("scan", wikipedia, "-i", intel)
    assert res.returncode == 0, res.stderr
    upload, meta = seen_by_zeek(UPLOAD), seen_by_zeek(META)
    assert hits(alerts_of(res.stdout)) == {
        (UPLOAD, "dns.question.name"): upload["dns.question.name"],  # not the Host headers
        (SERVER, "destination.ip"): conns(**{"id.resp_h": SERVER}),
        **{(META, f): n for f, n in meta.items()},
    }
    outside = upload["url.domain"] + conns(**{"id.orig_h": CLIENT})
    assert f"hits {outside} outside meta.if_in" in res.stderr


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("meta.if_in", "HTTP::IN_NOWHERE", "meta.if_in: unknown Intel::Where 'HTTP::IN_NOWHERE'"),
        ("meta.whitelist", "yes", "meta.whitelist must be T or F, not 'yes'"),
    ],
)
def test_a_value_zeek_would_refuse_is_refused_with_its_line(
    tmp_path: Path, wikipedia: Path, column: str, value: str, reason: str
) -> None:
    bad = write(
        tmp_path,
        "bad.dat",
        f"#fields\tindicator\tindicator_type\t{column}\n{UPLOAD}\tIntel::DOMAIN\t{value}\n",
    )
    res = vigia("scan", wikipedia, "-i", bad)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [f"vigia: {bad}:2: {reason}"]


# --- the loader and the index -------------------------------------------------------


def test_every_meta_column_is_kept(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "cif.dat",
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n"
        "#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\tmeta.url\tmeta.do_notice"
        "\tmeta.if_in\tmeta.whitelist\tmeta.cif_tags\tmeta.cif_confidence\tmeta.cif_source"
        "\tmeta.cif_firstseen\n"
        f"{SERVER}\tIntel::ADDR\tcif\tscanner\thttp://x/1\tT\tConn::IN_RESP\tF\tscanner,botnet"
        "\t85.0\tspamhaus\t-\n"
        f"{META}\tIntel::DOMAIN\tcif\t(empty)\t-\t-\t-\tT\t-\t-\t-\t-\n",
    )
    first, second = load(path).indicators
    assert (first.provider, first.comment, first.event) == ("cif", "scanner", "http://x/1")
    assert first.if_in == ("Conn::IN_RESP",) and not first.whitelist
    assert first.extra == (
        ("cif_confidence", "85.0"),
        ("cif_source", "spamhaus"),
        ("cif_tags", "scanner,botnet"),
        ("do_notice", "T"),
    )
    assert second.whitelist and second.if_in == () and second.extra == ()
    assert second.comment == "" and second.event == "cif.dat"  # (empty) and unset


def test_a_set_of_places_and_a_bad_one_in_a_lenient_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "i.dat",
        "#fields\tindicator\tindicator_type\tmeta.if_in\n"
        f"{UPLOAD}\tIntel::DOMAIN\tHTTP::IN_HOST_HEADER,SSL::IN_SERVER_NAME\n"
        f"{META}\tIntel::DOMAIN\tConn::IN_SIDEWAYS\n",
    )
    with pytest.raises(IndicatorFileError, match=r"i.dat:3: meta.if_in: unknown"):
        load(path)
    lenient = load(path, strict=False)
    assert [i.if_in for i in lenient.indicators] == [
        ("HTTP::IN_HOST_HEADER", "SSL::IN_SERVER_NAME")
    ]
    assert lenient.skipped["rejected"] == 1
    index = IndicatorIndex(lenient.indicators)
    assert index.lookup("tls.client.server_name", UPLOAD)
    assert index.lookup("url.domain", UPLOAD)
    assert not index.lookup("dns.question.name", UPLOAD)


def ind(itype: str, value: str, provider: str = "feed", **kw: Any) -> Indicator:
    return Indicator(itype, value, provider, **kw)


def test_whitelist_semantics_in_the_index() -> None:
    index = IndicatorIndex(
        [
            ind("ip-dst", "10.0.0.0/8"),
            ind("ip-src", "192.0.2.7"),
            ind("domain", "example.org"),
            ind("md5", "ab" * 16),
            ind("ip-dst", "10.9.0.0/16", "allow", whitelist=True),
            ind("ip-dst", "192.0.2.7", "allow", whitelist=True),
            ind("hostname", "good.example.org", "allow", whitelist=True),
            ind("md5", "ab" * 16, "allow", whitelist=True),
        ]
    )
    assert index.size == 4 and index.whitelist.size == 4
    gone = Suppressed()

    def probe(field: str, *values: str) -> list[str]:
        return [index.resolve(h).value for _, h in index.probe_field(field, values, gone)]

    # An address in a whitelisted network; one outside it still hits.
    assert probe("destination.ip", "10.9.1.1", "10.1.1.1") == ["10.0.0.0/8"]
    # A whitelisted address, whatever type matched it (ip-src here, ip-dst listed).
    assert probe("source.ip", "192.0.2.7") == []
    # A whitelisted name under a listed domain; its sibling hits; the case is ignored.
    assert probe("dns.question.name", "GOOD.example.org.", "bad.example.org") == ["example.org"]
    assert probe("file.hash.md5", "AB" * 16) == []
    assert gone.by_whitelist == {"allow": 4} and gone.outside_if_in == 0
    # No hit, no work: the screen is never reached.
    assert probe("destination.ip", "172.16.0.1") == []


def test_the_common_case_has_nothing_to_screen() -> None:
    plain = IndicatorIndex([ind("ip-dst", "192.0.2.1"), ind("domain", "example.org")])
    assert not plain.screens
    assert IndicatorIndex([ind("ip-dst", "192.0.2.1", if_in=("Conn::IN_ORIG",))]).screens
    assert IndicatorIndex([ind("ip-dst", "192.0.2.1", whitelist=True)]).screens


def test_a_put_moves_a_value_in_and_out_of_the_whitelist() -> None:
    index = IndicatorIndex([ind("hostname", "a.example", "s1"), ind("hostname", "b.example")])
    m = Matcher(index)
    obs = observation(dns__question__name=["a.example", "b.example"])
    from sensors.observation import Observation

    doc = Observation.from_ecs(obs)
    assert sorted(x.indicator.value for x in m.match(doc) if x.indicator) == [
        "a.example",
        "b.example",
    ]
    index.put(ind("hostname", "a.example", "s2", whitelist=True))
    assert [x.indicator.value for x in m.match(doc) if x.indicator] == ["b.example"]
    assert m.suppressed.by_whitelist == {"s2": 1}
    index.put(ind("hostname", "a.example", "s2", whitelist=True), active=False)  # expired
    assert len(m.match(doc)) == 2
    # The same key turned from detection into a whitelist entry, and back.
    index.put(ind("hostname", "b.example", whitelist=True))
    assert index.size == 1 and index.whitelist.size == 1
    index.put(ind("hostname", "b.example"))
    assert index.size == 2 and index.whitelist.size == 0


def test_exports_for_other_sensors_leave_whitelisted_values_out(tmp_path: Path) -> None:
    import base64

    from rules.export import suricata_datasets, zeek_intel

    indicators = [
        *load(write(tmp_path, "intel.dat", INTEL)).indicators,
        *load(write(tmp_path, "wl.dat", WHITELIST)).indicators,
    ]
    out = tmp_path / "vigia.intel"
    assert zeek_intel(indicators, out)["skipped: whitelisted"] == 2  # the entry, the listing
    assert [(i.value, i.whitelist) for i in load(out).indicators] == [(UPLOAD, False)]
    summary = suricata_datasets(indicators, tmp_path / "suricata")
    names = (tmp_path / "suricata" / "vigia-names.lst").read_text().split()
    assert [base64.b64decode(n).decode() for n in names] == [UPLOAD]
    assert summary["skipped: whitelisted"] == 2


# --- the centre ---------------------------------------------------------------------


@pytest.fixture
def centre(tmp_path: Path, db_url: str) -> Iterator[Services]:
    """The centre on SQLite and PostgreSQL, without MISP's warninglists: both
    wikimedia names are on their top-site lists, which would keep them out first."""
    s = build(
        load_settings(
            data_dir=tmp_path / "data",
            database_url=db_url,
            dedup_window_s=3600,
            warninglists=False,
        )
    )
    yield s
    s.close()


@pytest.fixture
def api(centre: Services) -> TestClient:
    return TestClient(create_app(centre))


def _upload(client: TestClient, token: str, name: str, body: str) -> Any:
    r = client.post(
        "/api/v1/indicators", headers=bearer(token), files={"file": (name, body.encode())}
    )
    assert r.status_code == 201, r.text
    return r.json()


def trace_docs(pcap: Path, observer: str, shift_to: float | None = None) -> list[dict[str, Any]]:
    """The trace's observations as a sensor would ship them (optionally moved in time)."""
    docs: list[dict[str, Any]] = []
    sensor = Sensor(SensorConfig(observer=observer), lambda o: docs.append(o.to_ecs()), None)
    for ts, linktype, frame in read_packets(pcap):
        sensor.packet(ts, linktype, frame)
    sensor.finish()
    if shift_to is not None:
        for n, d in enumerate(docs):
            d["@timestamp"] = iso(shift_to + n)
    return docs


def test_meta_columns_survive_the_store(api: TestClient, centre: Services) -> None:
    from sqlalchemy import select

    from correlator.esindicators import document
    from correlator.liveindex import LiveIndex
    from correlator.rows import IndicatorRow
    from correlator.store import IndicatorStore

    analyst = make_token(centre, Role.ANALYST)
    live = LiveIndex()
    with centre.db.transaction(write=False) as s:
        assert live.current(s).size == 0  # held before: what follows is caught up

    cif = (
        "#fields\tindicator\tindicator_type\tmeta.source\tmeta.do_notice\tmeta.if_in"
        "\tmeta.cif_tags\tmeta.cif_confidence\n"
        f"{SERVER}\tIntel::ADDR\tcif\tT\tConn::IN_RESP\tscanner,botnet\t85.0\n"
    )
    assert _upload(api, analyst, "cif.dat", cif)["loaded"] == 1
    _upload(api, analyst, "wl.dat", WHITELIST)
    with centre.db.transaction(write=False) as s:
        stored = {i.value: i for i in IndicatorStore.load_all(s)}
        since = {i.value: i for i in IndicatorStore.changed_since(s, 0)}
        index = live.current(s)  # incremental: rows of later versions put in place
    for got in (stored, since):
        assert got[SERVER].if_in == ("Conn::IN_RESP",) and not got[SERVER].whitelist
        assert got[SERVER].extra == (
            ("cif_confidence", "85.0"),
            ("cif_tags", "scanner,botnet"),
            ("do_notice", "T"),
        )
        assert got[META].whitelist and got[META].provider == "source2"
    # The live index took both in: the whitelist held apart, the restriction applied.
    assert index.size == 1 and index.whitelist.size == 1
    assert not index.lookup("source.ip", SERVER)
    (hit,) = index.lookup("destination.ip", SERVER)
    assert hit.extra == stored[SERVER].extra and hit.if_in == ("Conn::IN_RESP",)
    with centre.db.transaction(write=False) as s:  # and a rebuild from scratch
        again = IndicatorIndex(IndicatorStore.load_all(s))
        # Elasticsearch's copy says so too (an indicator match rule filters on it).
        docs = {r.value: document(r)[1]["vigia"] for r in s.scalars(select(IndicatorRow))}
    assert again.size == 1 and again.whitelist.size == 1
    assert docs[META]["whitelist"] is True and "if_in" not in docs[META]
    assert docs[SERVER]["whitelist"] is False and docs[SERVER]["if_in"] == ["Conn::IN_RESP"]


def test_a_whitelist_in_the_centre_suppresses_ingest_and_retro_hunt_matches(
    api: TestClient, centre: Services, wikipedia: Path
) -> None:
    analyst = make_token(centre, Role.ANALYST)
    sensor = make_token(centre, Role.SENSOR, name="sensor-1")
    admin = make_token(centre, Role.ADMIN)
    now = (time.time() // 3600) * 3600 - 3 * 86_400  # three days ago, an hour's start
    docs = trace_docs(wikipedia, "sensor-1", shift_to=now)

    # Retro-hunt: seen first, then the whitelist, then the intel that lists both names.
    r = api.post(
        "/api/v1/observations",
        headers=bearer(sensor),
        json={"batch_id": "wiki-past", "observations": docs},
    )
    assert r.status_code == 200 and r.json()["alerts"] == 0, r.text
    _upload(api, analyst, "wl.dat", WHITELIST)
    hunt = _upload(api, analyst, "intel.dat", INTEL)["retro_hunt"]
    alerts = api.get("/api/v1/alerts", headers=bearer(analyst)).json()["alerts"]
    assert hunt["alerts"] == len(alerts) == 2
    assert hits(alerts) == {(UPLOAD, f): n for f, n in seen_by_zeek(UPLOAD).items()}
    suppressed = sum(seen_by_zeek(META).values())

    def whitelisted_in_metrics() -> str:
        text = api.get("/metrics", headers=bearer(admin)).text
        return next(x for x in text.splitlines() if x.startswith("vigia_hits_whitelisted_total"))

    assert (
        whitelisted_in_metrics()
        == f'vigia_hits_whitelisted_total{{source="source2"}} {float(suppressed)}'
    )

    # Ingest: the same trace again, later: upload's alerts grow, meta's stay absent.
    again = trace_docs(wikipedia, "sensor-1", shift_to=now + 3600)
    r = api.post(
        "/api/v1/observations",
        headers=bearer(sensor),
        json={"batch_id": "wiki-live", "observations": again},
    )
    assert r.status_code == 200, r.text
    assert r.json()["alerts"] == 2
    alerts = api.get("/api/v1/alerts", headers=bearer(analyst)).json()["alerts"]
    assert {a["threat"]["enrichments"][0]["matched"]["atomic"] for a in alerts} == {UPLOAD}
    assert whitelisted_in_metrics() == (
        f'vigia_hits_whitelisted_total{{source="source2"}} {float(2 * suppressed)}'
    )


def test_without_the_whitelist_the_centre_alerts_on_both(
    api: TestClient, centre: Services, wikipedia: Path
) -> None:
    """The control of the test above: the same trace, the intel alone."""
    analyst = make_token(centre, Role.ANALYST)
    sensor = make_token(centre, Role.SENSOR, name="sensor-1")
    _upload(api, analyst, "intel.dat", INTEL)
    docs = trace_docs(wikipedia, "sensor-1", shift_to=(time.time() // 3600) * 3600 - 3600)
    r = api.post(
        "/api/v1/observations",
        headers=bearer(sensor),
        json={"batch_id": "wiki-alone", "observations": docs},
    )
    assert r.status_code == 200 and r.json()["alerts"] == 4, r.text
    assert json.dumps(api.get("/api/v1/alerts", headers=bearer(analyst)).json()).count(META)
