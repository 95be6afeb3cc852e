"""The indicator index: batched lookups give what the matching semantics say.

A plain reference (ipaddress containment, suffix tests on names, lower-case
equality) decides each (indicator, value) pair on its own; the index, looking
values up a field at a time, must find exactly the same pairs.
"""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from correlator.index import IndicatorIndex
from correlator.matcher import Matcher
from rules.indicator import Indicator, normalise
from sensors.observation import Observation
from vigia.wiring import Services


def ind(kind: str, value: str, provider: str = "feed") -> Indicator:
    return Indicator(kind, normalise(kind, value), provider)


INDICATORS = [
    ind("ip-dst", "198.51.100.7"),
    ind("ip-dst", "10.0.0.0/8"),
    ind("ip-src", "10.20.0.0/16", "other"),
    ind("ip-dst", "2001:db8::/32"),
    ind("ip-dst", "2001:db8::66"),
    ind("domain", "evil.example"),
    ind("domain", "c2.bad.test"),
    ind("hostname", "exact.host.example"),
    ind("md5", "d41d8cd98f00b204e9800998ecf8427e"),
    ind("ja3-fingerprint-md5", "e7d705a3286e19ea42f587b344ee6865"),
    ind("sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ind("email-src", "Phish@Mail.Example"),
    ind("url", "http://evil.example/gate.php"),
]


# Fields whose values equal an indicator's, case aside, and the types that apply there.
EQUAL_CASE_FREE = {
    "file.hash.md5": {"md5"},
    "tls.client.ja3": {"ja3-fingerprint-md5"},
    "email.from.address": {"email-src", "email"},
}


def reference(field: str, value: str) -> set[tuple[str, str]]:
    """(type, indicator value) pairs a value in `field` matches, decided one by one."""
    out = set()
    for i in INDICATORS:
        kind = i.kind
        if field in ("source.ip", "destination.ip") and kind == "addr":
            try:
                addr = ipaddress.ip_address(value)
            except ValueError:
                continue
            net = ipaddress.ip_network(i.value)
            if addr.version == net.version and addr in net:
                out.add((i.type, i.value))
        elif field == "dns.question.name" and kind in ("domain", "hostname"):
            name = value.rstrip(".").lower()
            if name == i.value or (kind == "domain" and name.endswith("." + i.value)):
                out.add((i.type, i.value))
        elif i.type in EQUAL_CASE_FREE.get(field, ()) and value.lower() == i.value:
            out.add((i.type, i.value))
    return out


INDEX = IndicatorIndex(INDICATORS)

VALUES = {
    "destination.ip": st.sampled_from(
        [
            *("198.51.100.7", "10.20.3.4", "10.9.9.9", "11.0.0.1", "2001:db8::66"),
            *("2001:db9::1", "::ffff:10.0.0.1", "0.0.0.0", "not-an-ip", "", "::"),
            *("10.20.3.4/16", "10.9.9.9\x00"),  # not addresses: no network holds them
        ]
    ),
    "dns.question.name": st.sampled_from(
        [
            *("evil.example", "A.Evil.Example.", "notevil.example", "x.c2.bad.test"),
            *("bad.test", "exact.host.example", "sub.exact.host.example", "", "."),
            "a..evil.example",
        ]
    ),
    "file.hash.md5": st.sampled_from(
        ["D41D8CD98F00B204E9800998ECF8427E", "e7d705a3286e19ea42f587b344ee6865", "zz", "abc"]
    ),
    "tls.client.ja3": st.sampled_from(
        ["e7d705a3286e19ea42f587b344ee6865", "d41d8cd98f00b204e9800998ecf8427e"]
    ),
    "email.from.address": st.sampled_from(["phish@mail.example", "PHISH@MAIL.EXAMPLE", "x@y"]),
}


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(VALUES)).flatmap(lambda f: st.tuples(st.just(f), st.lists(VALUES[f])))
)
def test_batched_lookups_agree_with_the_reference(case: tuple[str, list[str]]) -> None:
    field, values = case
    got: list[set[tuple[str, str]]] = [set() for _ in values]
    for i, hit in INDEX.probe_field(field, values):
        record = INDEX.resolve(hit)
        got[i].add((record.type, record.value))
    assert got == [reference(field, v) for v in values]
    # One value at a time answers the same.
    assert [{(r.type, r.value) for r in INDEX.lookup(field, v)} for v in values] == got


def test_networks_do_not_answer_across_families() -> None:
    # pytricia's IPv4 trie holds IPv6 strings under 0.0.0.0/0, and the reverse.
    index = IndicatorIndex([ind("ip-dst", "0.0.0.0/0"), ind("ip-dst", "::/0")])
    hits = index.probe_field("destination.ip", ["192.0.2.1", "2001:db8::1", "junk"])
    assert sorted((i, v) for i, (_, v) in hits) == [(0, "0.0.0.0/0"), (1, "::/0")]


def test_every_enclosing_network_and_source_hits() -> None:
    index = IndicatorIndex(
        [
            ind("ip-dst", "10.0.0.0/8", "a"),
            ind("ip-dst", "10.20.0.0/16", "b"),
            ind("ip-dst", "10.20.0.0/16", "c"),
        ]
    )
    hits = [index.resolve(h) for _, h in index.probe_field("destination.ip", ["10.20.1.1"])]
    assert sorted((r.value, r.provider) for r in hits) == [
        ("10.0.0.0/8", "a"),
        ("10.20.0.0/16", "b"),
        ("10.20.0.0/16", "c"),
    ]


def test_a_batch_keeps_each_observations_matches_together() -> None:
    def obs(ts: float, name: str) -> Observation:
        o = Observation(ts, "s1", "10.1.1.1", "192.0.2.9", 5000, 53, "udp", "1:x")
        o.add("dns.question.name", name)
        o.add("file.hash.md5", "d41d8cd98f00b204e9800998ecf8427e")
        return o

    batch = [obs(1.0, "evil.example"), obs(2.0, "quiet.example"), obs(3.0, "x.evil.example")]
    matches = Matcher(INDEX).match_many(batch)
    owners = [batch.index(m.observation) for m in matches]
    assert owners == sorted(owners)
    assert [(owners[n], m.field) for n, m in enumerate(matches)].count((1, "file.hash.md5")) == 1
    assert len(matches) == 5  # two names and three hashes


def test_the_live_index_follows_the_store_incrementally(services: Services) -> None:
    from datetime import timedelta

    from core.clock import utcnow
    from correlator.liveindex import LiveIndex
    from correlator.rows import IndicatorRow
    from correlator.store import IndicatorStore

    live = LiveIndex()

    def current() -> IndicatorIndex:
        with services.db.transaction(write=False) as s:
            return live.current(s)

    def save(*indicators: Indicator) -> None:
        with services.db.transaction() as s:
            IndicatorStore.save(s, indicators)

    save(ind("domain", "evil.example"), ind("ip-dst", "10.0.0.0/8"), ind("md5", "ab" * 16))
    first = current()
    assert first.size == 3 and current() is first
    # A refresh, a new one, one no longer for detection: put in place, not rebuilt.
    save(
        Indicator("domain", "evil.example", "feed", confidence=90),
        ind("ip-dst", "10.20.0.0/16"),
        Indicator("md5", "ab" * 16, "feed", to_ids=False),
    )
    assert current() is first and first.size == 3
    assert [r.confidence for r in first.lookup("dns.question.name", "x.evil.example")] == [90]
    assert {r.value for r in first.lookup("destination.ip", "10.20.1.1")} == {
        "10.0.0.0/8",
        "10.20.0.0/16",
    }
    assert first.lookup("file.hash.md5", "ab" * 16) == []
    # The same indicator from another provider sits beside it; a refresh keeps both.
    save(ind("domain", "evil.example", "other"))
    save(Indicator("domain", "evil.example", "other", confidence=10))
    assert current() is first
    got = sorted(
        (r.provider, r.confidence) for r in first.lookup("dns.question.name", "evil.example")
    )
    assert got == [("feed", 90), ("other", 10)] and first.size == 4
    # An expiry purge removes rows: the next look rebuilds and swaps.
    with services.db.transaction() as s:
        s.query(IndicatorRow).filter(IndicatorRow.provider == "other").update(
            {"expires": utcnow() - timedelta(seconds=1)}
        )
        assert IndicatorStore.purge_expired(s) == 1
    rebuilt = current()
    assert rebuilt is not first and rebuilt.size == 3
    assert [r.provider for r in rebuilt.lookup("dns.question.name", "evil.example")] == ["feed"]
