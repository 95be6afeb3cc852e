"""Indicator feeds on a schedule: a local file and an http(s) URL, refreshed; a feed
that fails keeps its last good indicators and its failure is on record."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import HTTPServer, SimpleHTTPRequestHandler
from pathlib import Path

import pytest

from core.settings import load_settings
from correlator import feeds, syncstate
from correlator.bulkstore import EXPIRY_SLACK
from correlator.sources import all_sources
from vigia import scheduler
from vigia.wiring import Services, build


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", root
    finally:
        server.shutdown()


def _matches(services: Services, value: str) -> bool:
    with services.db.transaction(write=False) as s:
        return bool(services.live.current(s).lookup("dns.question.name", value))


def test_feeds_refresh_and_a_failing_one_keeps_its_indicators(
    tmp_path: Path, db_url: str, served: tuple[str, Path]
) -> None:
    base, root = served
    local = tmp_path / "local.csv"
    local.write_text("type,value\nhostname,local-bad.example\n")
    (root / "remote.txt").write_text("remote-bad.example\n# a comment\n")
    url = f"{base}/remote.txt"
    services = build(
        load_settings(data_dir=tmp_path / "d", database_url=db_url, feeds=[str(local), url])
    )
    try:
        out = feeds.refresh_all(services.db, services.take_in, services.settings.feeds)
        assert [(o.ok, o.loaded, o.new) for o in out] == [(True, 1, 1), (True, 1, 1)]
        assert _matches(services, "remote-bad.example") and _matches(services, "local-bad.example")
        (root / "remote.txt").write_text("remote-bad.example\nsecond-bad.example\n")
        again = feeds.refresh(services.db, services.take_in, url)
        assert (again.ok, again.loaded, again.new) == (True, 2, 1)
        # The URL disappears: the run fails, is on record, and what it gave stays active.
        (root / "remote.txt").unlink()
        every = timedelta(minutes=60)
        assert scheduler.run_job(services, "feeds", scheduler.feeds_job, every, True) == "failed"
        assert _matches(services, "second-bad.example")
        with services.db.transaction(write=False) as s:
            rows = {r.name: r for r in all_sources(s)}
        assert rows[url].status == "error" and "404" in rows[url].message
        assert rows[url].last_ok is not None and rows[str(local)].status == "ok"
    finally:
        services.close()


def test_replicas_share_what_each_feed_gave(
    tmp_path: Path, db_url: str, served: tuple[str, Path]
) -> None:
    """Two centres with their own data directories on one database: a feed the first
    took in is unchanged for the second (not read again, its counters kept); a changed
    one is taken in by whichever runs next."""
    base, root = served
    (root / "remote.txt").write_text("shared-bad.example\n")
    url = f"{base}/remote.txt"

    def replica(name: str) -> Services:
        return build(
            load_settings(
                data_dir=tmp_path / name,
                database_url=db_url,
                feeds=[url],
                warninglists=False,
                secret_key="feeds-replicas-share-this-secret-0123456789",
            )
        )

    a = replica("a")
    b = replica("b")
    try:
        (first,) = feeds.refresh_all(a.db, a.take_in, a.settings.feeds)
        assert (first.ok, first.loaded, first.new) == (True, 1, 1)
        (same,) = feeds.refresh_all(b.db, b.take_in, b.settings.feeds)
        assert (same.ok, same.loaded, same.message) == (True, 0, "unchanged")
        with b.db.transaction(write=False) as s:
            row = {r.name: r for r in all_sources(s)}[url]
        assert row.status == "ok" and row.message == "unchanged"
        assert row.counters["indicators"] == 1  # what the last real read gave
        (root / "remote.txt").write_text("shared-bad.example\nnext-bad.example\n")
        (changed,) = feeds.refresh_all(b.db, b.take_in, b.settings.feeds)
        assert (changed.ok, changed.loaded, changed.new) == (True, 2, 1)
        (again,) = feeds.refresh_all(a.db, a.take_in, a.settings.feeds)
        assert again.message == "unchanged"
        assert _matches(a, "next-bad.example")  # what b took in, active on a
    finally:
        a.close()
        b.close()


def test_an_unchanged_feed_is_taken_in_again_once_a_day(
    tmp_path: Path, db_url: str, served: tuple[str, Path]
) -> None:
    """Skipping an unchanged feed lasts a day at most: the full intake is what moves
    its indicators' default expiries, so a feed the same for weeks stays active."""
    base, root = served
    (root / "steady.txt").write_text("steady-bad.example\n")
    url = f"{base}/steady.txt"
    s = build(
        load_settings(data_dir=tmp_path / "d", database_url=db_url, feeds=[url], warninglists=False)
    )
    try:
        (first,) = feeds.refresh_all(s.db, s.take_in, s.settings.feeds)
        assert (first.ok, first.loaded) == (True, 1)
        (same,) = feeds.refresh_all(s.db, s.take_in, s.settings.feeds)
        assert same.message == "unchanged"
        with s.db.transaction() as session:  # the last full intake, a day and more ago
            state = syncstate.get(session, feeds.KIND, url)
            at = datetime.fromisoformat(state["at"]) - EXPIRY_SLACK - timedelta(minutes=1)
            syncstate.put(session, feeds.KIND, url, {**state, "at": at.isoformat()})
        (again,) = feeds.refresh_all(s.db, s.take_in, s.settings.feeds)
        assert (again.ok, again.loaded, again.message) == (True, 1, "")
        (then,) = feeds.refresh_all(s.db, s.take_in, s.settings.feeds)
        assert then.message == "unchanged"  # and a day of skipping again
    finally:
        s.close()


def test_a_feed_with_nothing_usable_fails_and_keeps_nothing(tmp_path: Path, db_url: str) -> None:
    """A CSV feed is read as it is stored (streamed): when every record is refused,
    the intake is rolled back, the failure is on record with the first reason, and
    the feed is read again next time (no sync point kept)."""
    bad = tmp_path / "bad.csv"
    bad.write_text("type,value\nip-dst,not-an-address\ndomain,\n")
    services = build(load_settings(data_dir=tmp_path / "d", database_url=db_url, feeds=[str(bad)]))
    try:
        out = feeds.refresh(services.db, services.take_in, str(bad))
        assert not out.ok and "not-an-address" in out.message
        with services.db.transaction(write=False) as s:
            row = {r.name: r for r in all_sources(s)}[str(bad)]
            assert row.status == "error" and syncstate.get(s, feeds.KIND, str(bad)) == {}
        bad.write_text("type,value\nip-dst,198.51.100.9\n")
        fixed = feeds.refresh(services.db, services.take_in, str(bad))
        assert (fixed.ok, fixed.loaded, fixed.new) == (True, 1, 1)
    finally:
        services.close()
