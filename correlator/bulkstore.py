"""Indicators written and read in bulk: a million rows in seconds, no object per row.

Writing: the incoming indicators go into a temporary table in one statement
(executemany on SQLite, COPY on PostgreSQL: correlator.bulkstaging); the
database then finds what is new and what changed (a join on the unique key)
and upserts only those with one INSERT … SELECT. A re-import of an unchanged
source writes nothing: no row, no version bump, so no live index refreshes.

A default expiry (rules/vocab `expiry_days`) moves forward only once it is
EXPIRY_SLACK old: re-taking a feed every hour rewrites its rows once a day,
not every hour, and an indicator still ages out within a day of its source
dropping it.

Reading: the live index reads plain tuples, streamed (a server-side cursor on
PostgreSQL), never ORM objects.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from correlator.bulkstaging import META, STAGED, TMP, dedup, fill, stored_date
from rules.indicator import Indicator
from rules.vocab import indicator_types

EXPIRY_SLACK = timedelta(days=1)


def taken_in_lately(state: dict[str, Any], now: datetime) -> bool:
    """Whether a source's last full intake (its kept state's ISO "at") is less than
    EXPIRY_SLACK old: only so long may an unchanged source be skipped, as the full
    intake is what moves its default expiries forward."""
    try:
        at = datetime.fromisoformat(state["at"])
    except (KeyError, TypeError, ValueError):
        return False
    return at <= now < at + EXPIRY_SLACK


_SQLITE_CACHE_KB = 128 * 1024
# The columns an import sets, in the temporary table's order (`pos` and `d` apart: `d` marks
# a row whose expiry is its type's default, left NULL in `expires` and named once per type
# in the statements, not ~55 bytes of text per row).
_COLS = (
    "type", "value", "provider", "to_ids", "confidence", "tlp", "event", "threat_level",
    "first_seen", "last_seen", "expires", "comment", "whitelist", "if_in", "extra",
)  # fmt: skip
# What a refresh of a known row rewrites (first_seen stays the first one given).
_KEEP = (
    "to_ids", "confidence", "tlp", "event", "threat_level", "last_seen", "expires",
    "comment", "whitelist", "if_in", "extra",
)  # fmt: skip
_DATES = ("first_seen", "last_seen", "expires")


@dataclass(frozen=True)
class Written:
    fresh: Sequence[int]  # positions (in the given sequence) of the indicators new to the store
    written: int  # rows inserted or changed
    new: int = 0  # how many rows were new (len(fresh) when positions were asked for)
    after_id: int = 0  # the new rows are those of this version with a larger id
    version: int = 0  # the indicator version that wrote them (0: nothing written)
    read: int = 0  # how many indicators were given (duplicates included)


def default_expiries(now: datetime) -> dict[str, datetime]:
    """The default expiry by indicator type, for indicators loaded now (one object per type)."""
    days = indicator_types().get("expiry_days", {})
    return {t: now + timedelta(days=d) for t, d in days.items() if isinstance(d, int)}


def write(
    session: Session, indicators: Iterable[Indicator], now: datetime, positions: bool = True
) -> Written:
    """Insert the new indicators, refresh the changed ones (by type, value and provider;
    the last of duplicates wins); the unchanged are left alone.

    `indicators` is read once, as it comes (a loader's stream: no list of a million
    records). With `positions`, the new ones' positions in it are listed (`fresh`);
    without, only counted (the caller reads them back with `new_rows` if it wants them).
    """
    staged = stage(session, indicators, now)
    try:
        return staged.write(positions)
    finally:
        staged.close()


def stage(session: Session, indicators: Iterable[Indicator], now: datetime) -> Staged:
    """`indicators` read into the temporary table, not yet written (`Staged.write`); the
    caller closes it. Lets a caller read a source while it waits for something else (the
    warninglists compiling in their child process) and screen the rows after."""
    conn = session.connection()
    pg = conn.dialect.name == "postgresql"
    raw: Any = conn.connection.dbapi_connection
    cur = raw.cursor()
    saved = None
    if not pg:
        # A larger page cache for the statement's B-trees while the import runs: with the
        # default 2 MB a million rows spill and re-read pages (and the WAL grows with them).
        cur.execute("PRAGMA cache_size")
        saved = cur.fetchone()[0]
        cur.execute(f"PRAGMA cache_size = {-_SQLITE_CACHE_KB}")
        cur.execute(f"PRAGMA temp.cache_size = {-_SQLITE_CACHE_KB}")
    staged = Staged(session, raw, cur, pg, now, saved)
    try:
        staged.read = fill(cur, pg, indicators, staged.defaults)
    except BaseException:
        staged.close()
        raise
    return staged


class _Probe:
    """What a warninglist looks at of an indicator (its type and value), reused per row."""

    __slots__ = ("type", "value")

    def __init__(self) -> None:
        self.type = self.value = ""


class Staged:
    """Indicators in the temporary table (`stage`), to screen, write, then close."""

    def __init__(
        self, session: Session, raw: Any, cur: Any, pg: bool, now: datetime, saved: Any
    ) -> None:
        self.session, self.raw, self.cur, self.pg, self.now = session, raw, cur, pg, now
        self.saved = saved
        self.defaults = default_expiries(now)
        self.read = 0  # how many indicators were given (duplicates included), less screened
        self.closed = False

    def screen(self, catching: Callable[[Indicator], str | None], skipped: Counter[str]) -> None:
        """The rows a list catches (`catching`: Warnings.catching) dropped and counted in
        `skipped` as "warninglist: NAME", as Warnings.filter does to a stream."""
        cur, probe, caught = self.cur, _Probe(), []
        as_indicator = cast(Indicator, probe)
        scan = f"SELECT pos, type, value FROM {TMP} ORDER BY pos"
        rows = self.raw.cursor(name="vigia_screen") if self.pg else self.raw.cursor()
        try:
            if self.pg:
                rows.itersize = 20_000
            rows.execute(scan)
            for pos, probe.type, probe.value in rows:
                name = catching(as_indicator)
                if name is not None:
                    caught.append((pos,))
                    skipped[f"warninglist: {name}"] += 1
        finally:
            rows.close()
        if caught:
            mark = "%s" if self.pg else "?"
            cur.executemany(f"DELETE FROM {TMP} WHERE pos = {mark}", caught)
            self.read -= len(caught)

    def write(self, positions: bool = True) -> Written:
        """The staged rows into the store (see `write`)."""
        from correlator.store import IndicatorStore  # the version row lives there

        session, cur, pg, now, read = self.session, self.cur, self.pg, self.now, self.read
        if not read:
            return Written([], 0)
        col = _columns(self.defaults, pg)
        changed = _changed(pg, col)
        # Anything new or changed? On an unchanged source this one pass over the join is all
        # the work (nothing written, no version bump, no live index refreshes); on a
        # first import it stops at the first row.
        joined = (
            f"FROM {STAGED} LEFT JOIN indicators i "
            "ON i.type = t.type AND i.value = t.value AND i.provider = t.provider "
            f"WHERE i.id IS NULL OR {changed}"
        )
        cur.execute(f"SELECT EXISTS (SELECT 1 {joined})")
        if not cur.fetchone()[0]:
            return Written([], 0, read=read)
        dedup(cur)
        # The version first: its row lock orders writers (IndicatorStore.save), so no
        # other writer inserts between the max(id) read here and this insert: the
        # rows this version inserted are those above it.
        version = IndicatorStore._bump(session)
        cur.execute("SELECT coalesce(max(id), 0), count(*) FROM indicators")
        after_id, before = cur.fetchone()
        cols = ", ".join(_COLS)
        picked = ", ".join(col[c] for c in _COLS)
        mark = "%s" if pg else "?"
        # SQLite inserts in key order (read from the key index _dedup made): its unique
        # index then grows at its end, not at a random page per row (a million new rows:
        # 8.6 s of CPU in file order, 4.7 s in key order). Ids follow the key, not the file.
        order = "t.pos" if pg else "t.type, t.value, t.provider"
        upsert = (
            f"INSERT INTO indicators ({cols}, loaded_at, changed_in) "
            f"SELECT {picked}, {mark}, {mark} {joined} ORDER BY {order} "
            "ON CONFLICT (type, value, provider) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in (*_KEEP, "loaded_at", "changed_in"))
        )
        stamp = (stored_date(now, pg), version)
        if pg:
            written = _update_then_insert(cur, upsert, picked, stamp, col, changed)
        else:
            cur.execute(upsert, stamp)
            written = cur.rowcount
        cur.execute("SELECT count(*) FROM indicators")
        new = cur.fetchone()[0] - before
        fresh: Sequence[int] = array("q")
        if positions and new:
            cur.execute(
                f"SELECT t.pos FROM {TMP} t JOIN indicators i ON i.type = t.type "
                "AND i.value = t.value AND i.provider = t.provider "
                f"WHERE i.id > {mark} ORDER BY t.pos",
                (after_id,),
            )
            fresh = array("q", (p for (p,) in cur))
        return Written(fresh, written, new, after_id, version, read)

    def close(self) -> None:
        """The temporary table dropped, the page cache back to its size."""
        if self.closed:
            return
        self.closed = True
        cur = self.cur
        if self.pg and _failed(self.raw):
            cur.close()  # a failed statement (or a source that failed in a COPY): the
            return  # rollback drops the tables, and any statement now would fail again
        cur.execute(f"DROP TABLE IF EXISTS {TMP}")
        cur.execute(f"DROP TABLE IF EXISTS {TMP}_meta")
        if not self.pg:
            cur.execute(f"PRAGMA cache_size = {self.saved}")
            cur.execute("PRAGMA temp.cache_size = 0")  # back to the default
        cur.close()


def _failed(raw: Any) -> bool:
    """Whether a PostgreSQL connection's transaction had a statement fail (psycopg imported
    here, on PostgreSQL only: ~0.13 s a SQLite process need not pay)."""
    from psycopg.pq import TransactionStatus

    return bool(raw.info.transaction_status == TransactionStatus.INERROR)


def new_rows(session: Session, written: Written) -> Iterator[Sequence[Any]]:
    """The rows `written` inserted (ROW's columns), streamed: what a retro-hunt looks for."""
    from correlator.rows import IndicatorRow

    t = IndicatorRow.__table__.c
    q = select(*(t[c] for c in ROW)).where(t.id > written.after_id, t.changed_in == written.version)
    result = session.execute(q, execution_options={"stream_results": True, "yield_per": 20_000})
    for part in result.partitions():
        yield from part


def _update_then_insert(
    cur: Any,
    upsert: str,
    picked: str,
    stamp: tuple[Any, Any],
    col: dict[str, str] | None = None,
    changed: str | None = None,
) -> int:
    """PostgreSQL: the changed rows by one UPDATE, the new ones by a plain INSERT; ON
    CONFLICT's speculative insertion costs ~60 % more over a million new rows (40-43 s
    against 25-26 s at load 4). The new rows go in key order (read from _dedup's index),
    as on SQLite: the unique index grows at its end (a million new rows: the INSERT's
    wall ~12 s -> ~7.7 s at load 1). Writers take the version row's lock first (as
    `write` did), so no other inserts a key meanwhile; if one did, the upsert does it over."""
    col = col or _columns({}, True)
    sets = ", ".join(f"{c} = {col[c]}" for c in _KEEP)
    cur.execute(
        f"UPDATE indicators i SET {sets}, loaded_at = %s, changed_in = %s FROM {STAGED} "
        "WHERE i.type = t.type AND i.value = t.value AND i.provider = t.provider "
        f"AND {changed or _changed(True, col)}",
        stamp,
    )
    updated = int(cur.rowcount)
    cur.execute("SAVEPOINT vigia_bulk_insert")
    try:
        cur.execute(
            f"INSERT INTO indicators ({', '.join(_COLS)}, loaded_at, changed_in) "
            f"SELECT {picked}, %s, %s FROM {STAGED} LEFT JOIN indicators i "
            "ON i.type = t.type AND i.value = t.value AND i.provider = t.provider "
            "WHERE i.id IS NULL ORDER BY t.type, t.value, t.provider",
            stamp,
        )
    except Exception as exc:  # the driver's UniqueViolation: a key inserted meanwhile
        if getattr(exc, "sqlstate", None) != "23505":
            raise
        cur.execute("ROLLBACK TO SAVEPOINT vigia_bulk_insert")
        cur.execute(upsert, stamp)
    inserted = int(cur.rowcount)
    cur.execute("RELEASE SAVEPOINT vigia_bulk_insert")
    return updated + inserted


def _columns(defaults: dict[str, datetime], pg: bool) -> dict[str, str]:
    """SQL of each incoming column of `t` (_COLS, and `floor`) as the statements read it:
    `expires` is the row's own or, where `t.d` is set, its type's default (`defaults`,
    named once here as literals); `floor` is the expiry the stored one may lag to
    (the default's minus EXPIRY_SLACK, else the given expiry itself)."""

    def literal(value: datetime) -> str:
        text = stored_date(value, False) if not pg else stored_date(value, True).isoformat()
        return f"'{text}'::timestamptz" if pg else f"'{text}'"

    def by_type(shift: timedelta) -> str:
        if not defaults:
            return "t.expires"
        whens = " ".join(
            "WHEN '{}' THEN {}".format(t.replace("'", "''"), literal(d - shift))
            for t, d in sorted(defaults.items())
        )
        return f"CASE WHEN t.d THEN CASE t.type {whens} END ELSE t.expires END"

    col = {c: f"m.{c}" if c in META else f"t.{c}" for c in _COLS}
    if pg:
        col["extra"] = "t.extra::json"
    col["expires"], col["floor"] = by_type(timedelta(0)), by_type(EXPIRY_SLACK)
    return col


def _changed(pg: bool, col: dict[str, str]) -> str:
    """SQL: the stored row `i` differs from the incoming `t` in what a refresh rewrites."""
    differs = "IS DISTINCT FROM" if pg else "IS NOT"
    terms = [f"i.{c} {differs} {col[c]}" for c in _KEEP if c not in ("expires", "extra")]
    terms.append(f"i.extra::text {differs} t.extra" if pg else f"i.extra {differs} t.extra")
    # An expiry counts as changed past the slack: older than the floor, or later than given.
    exp, floor = col["expires"], col["floor"]
    terms.append(
        f"(({exp}) IS NULL) <> (i.expires IS NULL) OR i.expires < {floor} OR i.expires > {exp}"
    )
    return "(" + " OR ".join(f"({t})" for t in terms) + ")"


# What the live index reads of each active row, in this order.
ROW = ("type", "value", "provider", "to_ids", "confidence", "tlp", "event", "threat_level",
       "whitelist", "if_in", "extra")  # fmt: skip


def active_rows(session: Session, now: datetime, chunk: int = 20_000) -> Iterator[Sequence[Any]]:
    """The unexpired indicators as tuples (ROW), streamed `chunk` at a time."""
    from correlator.rows import IndicatorRow

    t = IndicatorRow.__table__.c
    q = select(*(t[c] for c in ROW)).where(or_(t.expires.is_(None), t.expires > now))
    result = session.execute(q, execution_options={"stream_results": True, "yield_per": chunk})
    for part in result.partitions():
        yield from part
