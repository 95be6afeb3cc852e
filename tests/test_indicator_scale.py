"""Indicators in bulk (issue 17): what the bulk writer stores and the index built from the
store answer exactly what the records loaded from the files answer; an unchanged
re-import writes nothing; the warninglists' compact form and its cache agree with
pymispwarninglists. (Memory and speed are measured by bench/indicators_centre.py.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymispwarninglists import WarningLists
from sqlalchemy import delete, select, update

from core.clock import utcnow
from correlator import bulkstore, snapshot
from correlator.index import IndicatorIndex
from correlator.liveindex import LiveIndex, _store_id
from correlator.rows import IndicatorRow, IndicatorVersion
from correlator.store import IndicatorStore
from rules.indicator import Indicator, canonical_url
from rules.warninglists import _COMPILED, Warnings
from tests.conftest import corpus
from vigia.wiring import Services

_label = st.text("abcdefxyz0189-", min_size=1, max_size=6).filter(
    lambda s: not s.startswith("-") and not s.endswith("-")
)
_name = st.lists(_label, min_size=1, max_size=4).map(".".join)
_v4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
_value = st.one_of(
    st.tuples(st.sampled_from(["ip-dst", "ip-src"]), _v4),
    st.tuples(st.just("ip-dst"), st.tuples(_v4, st.sampled_from([8, 16, 24, 30]))).map(
        lambda t: (t[0], bulk_net(*t[1]))
    ),
    st.tuples(st.sampled_from(["domain", "hostname"]), _name),
    st.tuples(st.just("url"), st.tuples(_name, _label)).map(
        lambda t: ("url", canonical_url(f"http://{t[1][0]}/{t[1][1]}"))
    ),
    st.tuples(st.just("md5"), st.binary(min_size=16, max_size=16).map(bytes.hex)),
    st.tuples(st.just("sha256"), st.binary(min_size=32, max_size=32).map(bytes.hex)),
    st.tuples(st.just("email-src"), st.tuples(_label, _name).map("@".join)),
)
_indicator = st.builds(
    lambda tv, provider, to_ids, conf, tlp, white, if_in: Indicator(
        tv[0], tv[1], provider, to_ids, conf, tlp, "ev", 2, whitelist=white, if_in=if_in
    ),
    _value,
    st.sampled_from(["feed-a", "feed-b"]),
    st.booleans(),
    st.sampled_from([50, 90]),
    st.sampled_from(["clear", "amber"]),
    st.sampled_from([False, False, False, True]),
    st.sampled_from([(), ("DNS::IN_REQUEST",)]),
)


def bulk_net(addr: str, bits: int) -> str:
    import ipaddress

    return str(ipaddress.ip_network(f"{addr}/{bits}", strict=False))


def _answers(index: IndicatorIndex, probes: list[tuple[str, str]]) -> list[set[tuple[object, ...]]]:
    out: list[set[tuple[object, ...]]] = []
    for field, value in probes:
        hits = index.lookup(field, value)
        out.append({(i.type, i.value, i.provider, i.confidence, i.tlp, i.if_in) for i in hits})
    return out


def _probes(indicators: list[Indicator]) -> list[tuple[str, str]]:
    """Where each value would be seen, plus a subdomain and a miss of each."""
    fields = {
        "ip-dst": ["destination.ip"], "ip-src": ["source.ip"],
        "domain": ["dns.question.name", "url.domain"], "hostname": ["dns.question.name"],
        "url": ["url.full"], "md5": ["file.hash.md5"], "sha256": ["file.hash.sha256"],
        "email-src": ["email.from.address"],
    }  # fmt: skip
    probes = []
    for ind in indicators:
        value = ind.value
        if ind.type == "ip-dst" and "/" in value:
            value = value.split("/")[0]
        if ind.type == "url":
            value = "http://" + value
        for f in fields[ind.type]:
            probes.append((f, value))
            if ind.type in ("domain", "hostname"):
                probes.append((f, "sub." + value))
    probes.append(("dns.question.name", "never.listed.example"))
    return probes


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(_indicator, max_size=40))
def test_the_index_from_the_store_answers_as_the_one_from_the_files(
    services: Services, indicators: list[Indicator]
) -> None:
    with services.db.transaction() as s:
        s.execute(delete(IndicatorRow))
        bulkstore.write(s, indicators, utcnow())
    with services.db.transaction(write=False) as s:
        from_store = IndicatorIndex.from_rows(IndicatorStore.active_rows(s, utcnow()))
    # The files' index: the last of duplicates (by type, value, provider) stands, as stored.
    last = {(i.type, i.value, i.provider): i for i in indicators}
    from_files = IndicatorIndex(last.values())
    probes = _probes(indicators)
    assert _answers(from_store, probes) == _answers(from_files, probes)
    assert from_store.size == from_files.size


def _version(services: Services) -> int:
    with services.db.transaction(write=False) as s:
        return IndicatorStore.version(s)[0]


def _feed(n: int, conf: int = 50) -> list[Indicator]:
    return [
        Indicator(t, v, "feed", True, conf)
        for k in range(n)
        for t, v in (("domain", f"d{k}.example"), ("ip-dst", f"192.0.2.{k}"))
    ]


def test_an_unchanged_reimport_writes_nothing(services: Services) -> None:
    with services.db.transaction() as s:
        first = bulkstore.write(s, _feed(50), utcnow())
    assert (len(first.fresh), first.written) == (100, 100)
    v1 = _version(services)
    with services.db.transaction(write=False) as s:
        stamps = set(s.execute(select(IndicatorRow.loaded_at)).scalars())
    with services.db.transaction() as s:  # an hour later, the same file
        again = bulkstore.write(s, _feed(50), utcnow() + timedelta(hours=1))
    assert (list(again.fresh), again.written) == ([], 0)
    assert _version(services) == v1  # no version: no live index refreshes
    with services.db.transaction(write=False) as s:
        assert set(s.execute(select(IndicatorRow.loaded_at)).scalars()) == stamps
    with services.db.transaction() as s:  # one value changed, two new
        feed = _feed(52)
        feed[3] = Indicator(feed[3].type, feed[3].value, "feed", True, 95)
        changed = bulkstore.write(s, feed, utcnow())
    assert (list(changed.fresh), changed.written) == ([100, 101, 102, 103], 5)
    assert _version(services) == v1 + 1
    with services.db.transaction(write=False) as s:
        conf = s.execute(
            select(IndicatorRow.confidence).where(IndicatorRow.value == feed[3].value)
        ).scalar_one()
        assert conf == 95
        assert IndicatorStore.changed_since(s, v1)[0].value == feed[3].value


def test_a_default_expiry_moves_once_older_than_the_slack(services: Services) -> None:
    now = utcnow()
    with services.db.transaction() as s:
        bulkstore.write(s, _feed(1), now)
    with services.db.transaction() as s:  # within the slack: left alone
        assert bulkstore.write(s, _feed(1), now + timedelta(hours=23)).written == 0
    with services.db.transaction() as s:
        assert bulkstore.write(s, _feed(1), now + timedelta(days=2)).written == 2
        expires = s.execute(
            select(IndicatorRow.expires).where(IndicatorRow.type == "ip-dst")
        ).scalar_one()
    assert expires == now + timedelta(days=2 + 30)


def test_duplicates_in_a_source_the_last_stands(services: Services) -> None:
    feed = [
        Indicator("domain", "dup.example", "feed", True, 10),
        Indicator("domain", "other.example", "feed"),
        Indicator("domain", "dup.example", "feed", True, 80),
    ]
    with services.db.transaction() as s:
        out = bulkstore.write(s, feed, utcnow())
        rows = s.execute(select(IndicatorRow.value, IndicatorRow.confidence)).all()
    assert list(out.fresh) == [1, 2] and out.written == 2
    assert sorted(rows) == [("dup.example", 80), ("other.example", 50)]


def test_the_zeek_columns_survive_the_bulk_path(services: Services) -> None:
    ind = Indicator(
        "domain", "z.example", "zeek", True, 50, "clear", "ev", 0, whitelist=False,
        if_in=("DNS::IN_REQUEST", "HTTP::IN_HOST_HEADER"), extra=(("do_notice", "T"),),
    )  # fmt: skip
    white = Indicator("ip-dst", "192.0.2.9", "zeek", whitelist=True)
    with services.db.transaction() as s:
        bulkstore.write(s, [ind, white], utcnow())
        assert bulkstore.write(s, [ind, white], utcnow()).written == 0
        got = {i.value: i for i in IndicatorStore.load_all(s)}
        index = IndicatorIndex.from_rows(IndicatorStore.active_rows(s, utcnow()))
    assert got["z.example"].if_in == ind.if_in and got["z.example"].extra == ind.extra
    assert got["192.0.2.9"].whitelist
    assert index.whitelist.size == 1 and index.screens
    assert [i.extra for i in index.lookup("dns.question.name", "z.example")] == [ind.extra]


def test_expired_rows_stay_out_of_the_index(services: Services) -> None:
    with services.db.transaction() as s:
        bulkstore.write(s, _feed(2), utcnow())
        s.execute(
            update(IndicatorRow)
            .where(IndicatorRow.value == "d0.example")
            .values(expires=utcnow() - timedelta(seconds=1))
        )
        index = IndicatorIndex.from_rows(IndicatorStore.active_rows(s, utcnow()))
        assert s.execute(select(IndicatorVersion.version)).scalar_one() >= 1
    assert index.lookup("dns.question.name", "d0.example") == []
    assert len(index.lookup("dns.question.name", "d1.example")) == 1


_CSV = (
    "type,value,confidence\n"
    "domain,a.example,50\n"
    "md5,not-a-hash,50\n"  # rejected, counted
    "ip-dst,8.8.8.8,50\n"  # a public resolver: the warninglists keep it out
    "ip-dst,192.0.2.1,50\n"
    "domain,a.example,90\n"  # a later duplicate: it stands
)


def test_a_streamed_source_is_taken_in_as_its_loaded_records(
    services: Services, tmp_path: Path
) -> None:
    """What `vigia indicators import` does (the CSV read as it is stored) counts, skips and
    stores what taking in the loaded list does."""
    from rules.sources import load_indicator_file, stream_indicator_file

    path = tmp_path / "feed.csv"
    path.write_text(_CSV)
    outcomes = []
    for streamed in (True, False):
        if streamed:
            result, stream = stream_indicator_file(path, strict=False)
            result.stream = stream
        else:
            result = load_indicator_file(path, strict=False)
        with services.db.transaction() as s:
            s.execute(delete(IndicatorRow))
            intake = services.take_in(s, result, "test")
            rows = s.execute(
                select(IndicatorRow.type, IndicatorRow.value, IndicatorRow.confidence)
            ).all()
        outcomes.append((intake.loaded, intake.new, dict(result.skipped), sorted(rows)))
    assert outcomes[0] == outcomes[1]
    loaded, new, skipped, rows = outcomes[0]
    assert (loaded, new, skipped["rejected"]) == (3, 2, 1)
    assert sum(n for k, n in skipped.items() if k.startswith("warninglist: ")) == 1
    assert rows == [("domain", "a.example", 90), ("ip-dst", "192.0.2.1", 50)]


def test_an_unchanged_file_is_skipped_unread_and_only_audited(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`vigia indicators import` of a file as its last import left it: nothing read, no
    indicator row written, one audit entry; read again once anything could differ."""
    from core.audit import AuditRecord
    from correlator import intake
    from rules.sources import file_digest, stream_indicator_file

    path = tmp_path / "feed.csv"
    path.write_text(_CSV)
    now = utcnow()
    monkeypatch.setattr(intake, "utcnow", lambda: now)

    def take() -> tuple[int, int, dict[str, int], int]:
        result, stream = stream_indicator_file(path, strict=False)
        read: list[Indicator] = []  # what the intake read of the file

        def counted() -> Iterator[Indicator]:
            for i in stream:
                read.append(i)
                yield i

        result.stream = counted()
        result.digest = file_digest(path)
        with services.db.transaction() as s:
            got = services.take_in(s, result, "test")
        return got.loaded, got.new, dict(result.skipped), len(read)

    def stored() -> tuple[list[tuple[object, ...]], list[AuditRecord]]:
        with services.db.transaction(write=False) as s:
            rows = s.execute(
                select(IndicatorRow.id, IndicatorRow.confidence, IndicatorRow.loaded_at)
            ).all()
            audits = list(s.execute(select(AuditRecord).order_by(AuditRecord.seq)).scalars())
            return sorted(rows), audits

    loaded, new, skipped, read = take()
    assert (loaded, new, read) == (3, 2, 4)  # four records read, the duplicate counted once
    rows, audits = stored()
    version = _version(services)
    now += timedelta(hours=1)  # an hour later, the same file
    assert take() == (3, 0, skipped, 0)  # the same counts, nothing read
    again, after = stored()
    assert again == rows and _version(services) == version
    assert [a.action for a in after[len(audits) :]] == ["indicators.load"]
    assert after[-1].detail["unchanged"] == {"sha256": file_digest(path)}
    assert after[-1].detail["indicators"] == 3 and after[-1].detail["new"] == 0
    # Another source rewrites one of its rows: the file is read again and the row restored.
    with services.db.transaction() as s:
        other = Indicator("domain", "a.example", "feed.csv", True, 10)
        assert bulkstore.write(s, [other], now).written == 1
    assert take()[3] == 4
    assert ("domain", "a.example", 90) in _typed_rows(services)
    assert take()[3] == 0
    now += timedelta(days=1)  # the default expiries may move: read again
    assert take()[3] == 4
    path.write_text(_CSV + "domain,b.example,50\n")  # changed
    assert take()[:2] == (4, 1)
    assert take()[3] == 0


def test_a_file_changed_while_it_was_read_is_read_again_next_time(
    services: Services, tmp_path: Path
) -> None:
    """The digest is taken before the file is read; when the file is another by the
    end of the intake, that digest is not remembered as what was taken in, so the
    next import reads it (it would otherwise be skipped once the file went back)."""
    from rules.sources import file_digest, stream_indicator_file

    path = tmp_path / "feed.csv"
    path.write_text(_CSV)

    def take(change_meanwhile: bool) -> int:
        result, stream = stream_indicator_file(path, strict=False)
        result.digest = file_digest(path)
        read = 0

        def counted() -> Iterator[Indicator]:
            nonlocal read
            for i in stream:
                read += 1
                yield i
            if change_meanwhile:
                path.write_text(_CSV + "domain,late.example,50\n")

        result.stream = counted()
        result.redigest = lambda: file_digest(path)
        with services.db.transaction() as s:
            services.take_in(s, result, "test")
        return read

    assert take(change_meanwhile=True) == 4
    path.write_text(_CSV)  # back as it was when its digest was taken
    assert take(change_meanwhile=False) == 4  # read, not skipped
    assert take(change_meanwhile=False) == 0  # now remembered: skipped


def test_a_key_inserted_meanwhile_makes_the_postgresql_insert_an_upsert() -> None:
    """PostgreSQL writes new rows by a plain INSERT (no ON CONFLICT: faster); should a
    key be inserted by another writer meanwhile, the statement is done over as the upsert."""

    class Clash(Exception):
        sqlstate = "23505"  # unique_violation

    class Cursor:
        def __init__(self) -> None:
            self.done: list[str] = []
            self.rowcount = 0

        def execute(self, sql: str, params: object = None) -> None:
            self.done.append(sql.split()[0] + (" ON CONFLICT" if "ON CONFLICT" in sql else ""))
            self.rowcount = {"UPDATE": 2, "INSERT ON CONFLICT": 5}.get(self.done[-1], 0)
            if self.done[-1] == "INSERT":
                raise Clash

    cur = Cursor()
    upsert = "INSERT INTO indicators SELECT 1 ON CONFLICT (type, value, provider) DO UPDATE"
    assert bulkstore._update_then_insert(cur, upsert, "t.type", ("now", 7)) == 7
    assert cur.done == ["UPDATE", "SAVEPOINT", "INSERT", "ROLLBACK", "INSERT ON CONFLICT",
                        "RELEASE"]  # fmt: skip


def _typed_rows(services: Services) -> list[tuple[object, ...]]:
    with services.db.transaction(write=False) as s:
        q = select(IndicatorRow.type, IndicatorRow.value, IndicatorRow.confidence)
        return [tuple(r) for r in s.execute(q)]


def test_the_cli_refuses_a_source_with_nothing_usable_and_writes_nothing(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "VIGIA_DATA_DIR": str(tmp_path / "d")}
    env.pop("VIGIA_DATABASE_URL", None)
    bad = tmp_path / "bad.csv"
    bad.write_text("type,value\nmd5,nope\nsha1,nope\n")
    vigia = [sys.executable, "-m", "vigia"]
    r = subprocess.run(
        [*vigia, "indicators", "import", str(bad)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert r.returncode != 0 and "bad.csv:2" in r.stderr, r.stderr
    from core.audit import AuditRecord
    from core.settings import load_settings
    from vigia.wiring import build

    s = build(load_settings(data_dir=tmp_path / "d"))
    try:
        with s.db.transaction(write=False) as session:
            assert session.execute(select(IndicatorRow)).first() is None
            actions = session.execute(select(AuditRecord.action)).scalars().all()
            assert "indicators.load" not in actions
    finally:
        s.close()


# --- warninglists -------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference() -> WarningLists:
    folder = corpus("misp", "warninglists", "lists")
    import json

    docs = [json.loads(p.read_text()) for p in sorted(folder.glob("*/list.json"))]
    return WarningLists(slow_search=False, lists=docs)


def _first(ref: WarningLists, ind: Indicator) -> str | None:
    for wl in ref.search(ind.value):
        types = getattr(wl, "matching_attributes", None) or []
        if not types or ind.type in types:
            return str(wl.name)
    return None


def test_compact_lists_answer_as_pymispwarninglists(reference: WarningLists) -> None:
    mine = Warnings.from_folder(corpus("misp", "warninglists", "lists"))
    probes = [
        Indicator(t, v, "x")
        for wl in list(reference.values())
        for v in list(wl.set)[:30]
        for t in ("ip-dst", "domain", "hostname", "md5", "url")
    ]
    probes += [Indicator("domain", f"not-listed-{k}.example", "x") for k in range(200)]
    assert [mine.catching(i) for i in probes] == [_first(reference, i) for i in probes]


def test_the_compiled_lists_are_cached_and_a_bad_cache_is_rebuilt(tmp_path: Path) -> None:
    folder = corpus("misp", "warninglists", "lists")
    _COMPILED.clear()
    made = Warnings.from_folder(folder, tmp_path)
    assert Warnings.from_folder(folder) is made  # one per process
    (cached,) = tmp_path.glob("warninglists-*.bin")
    _COMPILED.clear()  # another process: reads the file
    again = Warnings.from_folder(folder, tmp_path)
    assert again is not made and again._keys == made._keys and again._names == made._names
    cached.write_bytes(cached.read_bytes()[:-100])  # cut short
    assert Warnings._read(cached) is None
    _COMPILED.clear()
    rebuilt = Warnings.from_folder(folder, tmp_path)
    assert rebuilt._keys == made._keys and Warnings._read(cached) is not None
    cached.write_bytes(b"VIGIA-WL0\n" + cached.read_bytes()[10:])  # an older layout
    assert Warnings._read(cached) is None
    _COMPILED.clear()
    probe = Indicator("ip-dst", "8.8.8.8", "x")
    assert Warnings.from_folder(folder, tmp_path).catching(probe) == made.catching(probe)
    assert Warnings._read(cached) is not None  # written again


# --- the index kept on disk -----------------------------------------------------------


def _live(services: Services, path: Path) -> LiveIndex:
    live = LiveIndex(services.db, snapshot=path)
    assert live.wait(60), live.failure
    return live


def _kept(services: Services, path: Path, size: int) -> None:
    """Wait for the snapshot of an index of `size` (written once the load is served)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        kept = snapshot.load(path, _store_id(services.db))
        if kept is not None and kept[0].size == size:
            return
        time.sleep(0.05)
    raise AssertionError("no snapshot written")


def _probe_all(live: LiveIndex, values: list[str]) -> list[set[tuple[object, ...]]]:
    return _answers(live.index, [("dns.question.name", v) for v in values])


def test_a_restart_reads_the_snapshot_and_answers_the_same(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "index.snapshot"
    feed = [*_feed(30), Indicator("domain", "white.example", "z", whitelist=True)]
    with services.db.transaction() as s:
        bulkstore.write(s, feed, utcnow())
    first = _live(services, path)
    _kept(services, path, first.index.size)
    values = [f"d{k}.example" for k in range(30)] + ["sub.d3.example", "white.example", "no.x"]
    before = _probe_all(first, values)
    with services.db.transaction() as s:  # a change after the snapshot: caught up on start
        bulkstore.write(s, [Indicator("domain", "later.example", "feed")], utcnow())

    def no_rebuild(*_: object) -> object:
        raise AssertionError("rebuilt from the store")

    monkeypatch.setattr(IndicatorStore, "active_rows", staticmethod(no_rebuild))
    again = _live(services, path)
    assert _probe_all(again, values) == before and before[3]
    assert again.index.whitelist.size == 1
    assert len(again.index.lookup("dns.question.name", "later.example")) == 1


@pytest.mark.parametrize(
    "damage", ["older format", "flipped byte", "flipped in a part", "cut short", "removal since"]
)
def test_a_bad_or_stale_snapshot_is_detected_and_rebuilt(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    path = tmp_path / "index.snapshot"
    with services.db.transaction() as s:
        bulkstore.write(s, _feed(20), utcnow())
    _kept(services, path, _live(services, path).index.size)
    data = bytearray(path.read_bytes())
    if damage == "older format":
        now = f'"format": {snapshot.FORMAT}'.encode()
        data = bytearray(data.replace(now, b'"format": 1'))
    elif damage == "flipped byte":
        data[-10] ^= 0xFF
    elif damage == "flipped in a part":  # the digest refuses it before any is unmarshalled
        data[len(snapshot.MAGIC) + 40] ^= 0x01
    elif damage == "cut short":
        data = data[:-50]
    path.write_bytes(bytes(data))
    if damage == "removal since":
        with services.db.transaction() as s:
            s.execute(
                update(IndicatorRow)
                .where(IndicatorRow.value == "d5.example")
                .values(expires=utcnow() - timedelta(seconds=1))
            )
            assert IndicatorStore.purge_expired(s) == 1
    else:
        assert snapshot.load(path, _store_id(services.db)) is None
    reads: list[int] = []
    original = IndicatorStore.active_rows

    def counted(session: object, now: object) -> object:
        reads.append(1)
        return original(session, now)  # type: ignore[arg-type]

    monkeypatch.setattr(IndicatorStore, "active_rows", staticmethod(counted))
    live = _live(services, path)
    assert reads == [1]  # rebuilt from the store
    expected = 0 if damage == "removal since" else 1
    assert len(live.index.lookup("dns.question.name", "d5.example")) == expected
    assert len(live.index.lookup("dns.question.name", "d6.example")) == 1
    _kept(services, path, live.index.size)  # and written again, whole
