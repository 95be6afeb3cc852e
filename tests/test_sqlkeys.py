"""Match keys in the SQL store (correlator.sqlkeys): on PostgreSQL a retro-hunt reads
only the observations holding one of its indicators' keys, and must still find every
match a read of every document finds."""

from __future__ import annotations

import ipaddress
import time
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from core.tokens import Role
from correlator import sqlkeys
from correlator.index import IndicatorIndex
from correlator.matcher import Matcher
from correlator.rows import ObservationRow
from rules.indicator import Indicator, IndicatorError, normalise
from sensors.observation import Observation
from tests.conftest import PG_ADMIN_URL, _pg_answers, bearer, make_token
from tests.factories import observation
from vigia.wiring import Services

# Small pools, so that values, networks and parents meet often.
_octet = st.sampled_from(["10", "192", "255"])
_v4 = st.builds(lambda *o: ".".join(o), _octet, _octet, _octet, _octet)
_v6 = st.sampled_from(["2001:db8::1", "2001:db8::66", "2001:db8:1::1", "fe80::1"])
_label = st.sampled_from(["a", "evil", "EXAMPLE", "xn--80ak6aa92e"])
_name = st.lists(_label, min_size=1, max_size=3).map(".".join)
_md5 = st.sampled_from(["d41d8cd98f00b204e9800998ecf8427e", "0cc175b9c0f1b6a831c399e269772661"])
_seen_hash = st.one_of(_md5, _md5.map(str.upper))
_email = st.builds(lambda u, d: f"{u}@{d}", st.sampled_from(["Phish", "phish"]), _name)
_url = st.builds(
    lambda s, h, p: f"{s}://{h}{p}",
    st.sampled_from(["http", "https", "HTTP"]),
    _name,
    st.sampled_from(["/", "/gate.php", ":8080/x", ":80/"]),
)

_indicator_values = st.one_of(
    st.tuples(st.just("ip-dst"), st.one_of(_v4, _v6)),
    st.tuples(
        st.just("ip-src"),
        st.builds(lambda a, n: f"{a}/{n}", _v4, st.one_of(st.integers(16, 32), st.just(7))),
    ),
    st.tuples(st.just("ip-dst"), st.builds(lambda a, n: f"{a}/{n}", _v6, st.integers(16, 128))),
    st.tuples(st.sampled_from(["domain", "hostname"]), _name),
    st.tuples(st.just("url"), _url),
    st.tuples(st.sampled_from(["md5", "ja3-fingerprint-md5"]), _md5),
    st.tuples(st.sampled_from(["email", "email-src"]), _email),
    st.tuples(st.just("filename"), st.sampled_from(["a.exe", "A.EXE"])),
)
_fields = st.one_of(
    st.tuples(st.just("dns.question.name"), st.one_of(_name, _name.map(lambda n: n + "."))),
    st.tuples(st.just("tls.client.server_name"), _name),
    st.tuples(st.just("url.original"), _url),
    st.tuples(st.sampled_from(["file.hash.md5", "tls.client.ja3"]), _seen_hash),
    st.tuples(st.just("email.from.address"), _email),
    st.tuples(st.just("file.name"), st.sampled_from(["a.exe", "A.EXE"])),
)
_observations = st.builds(
    lambda src, dst, values: (src, dst, values),
    st.one_of(_v4, _v6),
    st.one_of(_v4, _v6),
    st.lists(_fields, max_size=4),
)


def _indicators(pairs: list[tuple[str, str]]) -> list[Indicator]:
    out = []
    for itype, value in pairs:
        try:
            out.append(Indicator(itype, normalise(itype, value), "feed"))
        except IndicatorError:
            continue
    return out


def _observation(src: str, dst: str, values: list[tuple[str, str]]) -> Observation:
    obs = Observation(1.7e9, "edge-1", src, dst, 1, 2, "udp", "1:x", "dns" if values else None)
    for field, value in values:
        obs.add(field, value)
    return obs


def _seen_as(ind: Indicator, prefix: str, upper: bool) -> tuple[str, str] | None:
    """A value an observation could carry that the indicator matches: a subdomain, an
    address in its network, another case or scheme (the Matcher decides)."""
    value = ind.value.upper() if upper else ind.value
    if ind.type == "domain":
        return "dns.question.name", f"{prefix}.{value}."
    if ind.type == "hostname":
        return "tls.client.server_name", value
    if ind.type == "url":
        return "url.original", "HTTP://" + ind.value
    if ind.type in ("md5", "ja3-fingerprint-md5"):
        return "file.hash.md5", value
    if ind.type.startswith("email"):
        return "email.from.address", value
    if ind.type == "filename":
        return "file.name", ind.value
    if "/" in ind.value:  # somewhere in the network, not only its first /24
        net = ipaddress.ip_network(ind.value)
        spread = len(prefix) * 7919 + ord(prefix[0]) * 104_729 + upper * 65_537
        return "source.ip", str(net.network_address + spread % net.num_addresses)
    return "source.ip", ind.value


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    st.lists(_indicator_values, min_size=1, max_size=6),
    st.lists(_observations, max_size=4),
    st.lists(st.tuples(st.integers(0, 5), _label, st.booleans()), max_size=6),
)
def test_every_observation_the_matcher_matches_holds_one_of_the_indicators_keys(
    pairs: list[tuple[str, str]],
    seen: list[tuple[str, str, list[tuple[str, str]]]],
    variants: list[tuple[int, str, bool]],
) -> None:
    indicators = _indicators(pairs)
    wanted = sqlkeys.indicator_keys(indicators)
    matcher = Matcher(IndicatorIndex(indicators))
    observations = [_observation(src, dst, values) for src, dst, values in seen]
    for n, prefix, upper in variants:  # values made to match, as well as chance ones
        field_value = _seen_as(indicators[n % len(indicators)], prefix, upper)
        if field_value is not None:
            field, value = field_value
            if field == "source.ip":
                observations.append(_observation(value, "10.9.9.9", []))
            else:
                observations.append(_observation("10.9.9.9", "10.9.9.9", [field_value]))
    for obs in observations:
        if not matcher.match(obs):
            continue
        # A match the keys cannot express is hunted over every document: None.
        assert wanted is None or wanted & set(sqlkeys.observation_keys(obs)), (obs, indicators)


def test_networks_keys_cannot_express_are_hunted_over_every_document() -> None:
    def keys(itype: str, value: str) -> list[str] | None:
        return sqlkeys.indicator_texts(Indicator(itype, normalise(itype, value), "f"))

    assert keys("ip-dst", "10.0.0.0/7") is None  # wider than /8
    assert keys("ip-dst", "2001:db8::/32") is None  # IPv6 networks
    assert keys("domain", "com") is None  # a one-label domain: every name under it
    assert keys("hostname", "localhost") == ["d:localhost"]  # the name itself: fine
    assert len(keys("ip-dst", "10.0.0.0/8") or []) == 65_536
    assert keys("ip-dst", "10.1.2.128/25") == ["n:10.1.2"]
    assert keys("ip-dst", "10.1.2.0/23") == ["n:10.1.2", "n:10.1.3"]


def test_postgresql_computes_the_same_keys() -> None:
    if not _pg_answers():
        pytest.skip("PostgreSQL does not answer on 127.0.0.1:5432")
    texts = ["a:10.1.2.3", "d:evil.example", "u:evil.example/gate.php", "t:ñandú.exe"]
    engine = sa.create_engine(PG_ADMIN_URL)  # a SELECT only: nothing is written
    try:
        with engine.connect() as c:
            for t in texts:
                sql = "SELECT " + sqlkeys.KEY_SQL.format(":t")
                assert c.execute(sa.text(sql), {"t": t}).scalar_one() == sqlkeys.key(t)
    finally:
        engine.dispose()


def test_a_postgresql_retro_hunt_reads_the_keyed_candidates_and_the_unkeyed_rows(
    client: TestClient, services: Services
) -> None:
    """Rows stored with keys are read only when they hold a key of the new indicators;
    rows stored before keys were written (NULL) are read whole, and still match."""
    if services.db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite keeps no keys: test_retrohunt covers its read of every document")
    sensor = make_token(services, Role.SENSOR, name="sensor-1")
    analyst = make_token(services, Role.ANALYST)
    now = (time.time() // 3600) * 3600 + 10 - 86_400
    quiet = [observation(ts=now, dst="198.51.100.1", dns__question__name=f"q{i}.quiet.example")
             for i in range(40)]  # fmt: skip
    docs: list[dict[str, Any]] = [
        *quiet,
        observation(ts=now, dst="198.51.100.1", dns__question__name="www.c2.bad.example"),
        observation(ts=now, dst="203.0.113.70"),
        observation(ts=now, dst="198.51.100.1", dns__question__name="legacy.bad.example"),
    ]
    r = client.post(
        "/api/v1/observations",
        headers=bearer(sensor),
        json={"batch_id": "batch-keys", "observations": docs},
    )
    assert r.status_code == 200, r.text
    with services.db.transaction() as s:
        keyed = s.scalars(sa.select(ObservationRow.match_keys)).all()
        assert all(keyed) and len(keyed) == len(docs)  # every row written with its keys
        legacy = s.scalars(
            sa.select(ObservationRow.id).where(
                ObservationRow.doc["dns"]["question"]["name"].as_string() == "legacy.bad.example"
            )
        ).one()
        s.execute(
            sa.update(ObservationRow).where(ObservationRow.id == legacy).values(match_keys=None)
        )
    iocs = b"type,value\ndomain,bad.example\nip-dst,203.0.113.64/28\n"
    up = client.post(
        "/api/v1/indicators", headers=bearer(analyst), files={"file": ("iocs.csv", iocs)}
    )
    assert up.status_code == 201, up.text
    # Read: the two holding a key, and the unkeyed one; not the 40 quiet ones.
    assert up.json()["retro_hunt"] == {"observations": 3, "alerts": 3}
    alerts = client.get("/api/v1/alerts", headers=bearer(analyst)).json()["alerts"]
    matched = sorted(a["threat"]["enrichments"][0]["matched"]["atomic"] for a in alerts)
    assert matched == ["203.0.113.70", "legacy.bad.example", "www.c2.bad.example"]


def test_the_hunt_s_planner_settings_end_with_its_lookups(services: Services) -> None:
    """The lookups turn table walks and parallel plans off; the intake's transaction
    goes on with the settings it had."""
    if services.db.engine.dialect.name != "postgresql":
        pytest.skip("planner settings are PostgreSQL's")
    from datetime import UTC, datetime

    from correlator.retrohunt import sql_pages

    names = ("enable_seqscan", "max_parallel_workers_per_gather", "plan_cache_mode", "jit")
    with services.db.transaction() as s:
        before = [s.scalar(sa.text(f"SHOW {n}")) for n in names]
        hunting = [Indicator("domain", "bad.example", "feed")]
        assert list(sql_pages(s)(hunting, datetime(2020, 1, 1, tzinfo=UTC))) == []
        assert [s.scalar(sa.text(f"SHOW {n}")) for n in names] == before
