"""Indicators written and read in bulk: a million rows in seconds, no object per row.

Writing: the incoming indicators go into a temporary table in one statement
(executemany on SQLite, COPY on PostgreSQL); the database then finds what is
new and what changed (a join on the unique key) and upserts only those with
one INSERT … SELECT. A re-import of an unchanged source writes nothing: no
row, no version bump, so no live index refreshes.

A default expiry (rules/vocab `expiry_days`) moves forward only once it is
EXPIRY_SLACK old: re-taking a feed every hour rewrites its rows once a day,
not every hour, and an indicator still ages out within a day of its source
dropping it.

Reading: the live index reads plain tuples, streamed (a server-side cursor on
PostgreSQL), never ORM objects.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from rules.indicator import Indicator
from rules.vocab import indicator_types

EXPIRY_SLACK = timedelta(days=1)
_TMP = "vigia_indicators_in"
# The columns an import sets, in the temporary table's order (`pos` and `floor` apart).
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


def default_expiries(now: datetime) -> dict[str, datetime]:
    """The default expiry by indicator type, for indicators loaded now (one object per type)."""
    days = indicator_types().get("expiry_days", {})
    return {t: now + timedelta(days=d) for t, d in days.items() if isinstance(d, int)}


def write(session: Session, indicators: Sequence[Indicator], now: datetime) -> Written:
    """Insert the new indicators, refresh the changed ones (by type, value and provider;
    the last of duplicates wins); the unchanged are left alone."""
    if not indicators:
        return Written([], 0)
    from correlator.store import IndicatorStore  # the version row lives there

    conn = session.connection()
    pg = conn.dialect.name == "postgresql"
    raw: Any = conn.connection.dbapi_connection
    cur = raw.cursor()
    try:
        _fill(cur, pg, indicators, now)
        # One pass over the join: the rows new or changed, by key then position, so the
        # last of a key's duplicates is the one kept (PostgreSQL refuses to upsert a
        # row twice in a statement). An unchanged source gives nothing here.
        # Read as it comes: psycopg's plain cursor would fetch a million rows at once
        # (200 MB on a first import); a named one is a server-side cursor.
        diff = raw.cursor(name="vigia_indicators_diff") if pg else cur
        if pg:
            diff.itersize = 20_000
        diff.execute(
            f"SELECT t.pos, t.type, t.value, t.provider, i.id IS NULL FROM {_TMP} t "
            "LEFT JOIN indicators i "
            "ON i.type = t.type AND i.value = t.value AND i.provider = t.provider "
            f"WHERE i.id IS NULL OR {_changed(pg)} ORDER BY t.type, t.value, t.provider, t.pos"
        )
        # Positions as machine integers: a first import keeps a million of each.
        keep, fresh = array("q"), array("q")
        last: list[Any] = []
        for pos, *key, new in diff:
            if keep and key == last:  # a later duplicate of the key: it stands instead
                if fresh and fresh[-1] == keep[-1]:
                    fresh.pop()
                keep.pop()
            keep.append(pos)
            if new:
                fresh.append(pos)
            last = key
        if pg:
            diff.close()
        if not keep:
            return Written([], 0)
        # The version first: its row lock orders writers (IndicatorStore.save).
        version = IndicatorStore._bump(session)
        _fill_keep(cur, pg, keep)
        cols = ", ".join(_COLS)
        picked = ", ".join(f"t.{c}::json" if pg and c == "extra" else f"t.{c}" for c in _COLS)
        mark = "%s" if pg else "?"
        cur.execute(
            f"INSERT INTO indicators ({cols}, loaded_at, changed_in) "
            f"SELECT {picked}, {mark}, {mark} FROM {_TMP}_keep k JOIN {_TMP} t ON t.pos = k.pos "
            "ORDER BY k.pos "
            "ON CONFLICT (type, value, provider) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in (*_KEEP, "loaded_at", "changed_in")),
            (_date(now, pg), version),
        )
        fresh = array("q", sorted(fresh))
        return Written(fresh, len(keep))
    finally:
        cur.execute(f"DROP TABLE IF EXISTS {_TMP}")
        cur.execute(f"DROP TABLE IF EXISTS {_TMP}_keep")
        cur.close()


def _changed(pg: bool) -> str:
    """SQL: the stored row `i` differs from the incoming `t` in what a refresh rewrites."""
    differs = "IS DISTINCT FROM" if pg else "IS NOT"
    terms = [f"i.{c} {differs} t.{c}" for c in _KEEP if c not in ("expires", "extra")]
    terms.append(f"i.extra::text {differs} t.extra" if pg else f"i.extra {differs} t.extra")
    # An expiry counts as changed past the slack: older than the floor, or later than given.
    terms.append(
        "(i.expires IS NULL) <> (t.expires IS NULL) OR i.expires < t.floor OR i.expires > t.expires"
    )
    return "(" + " OR ".join(f"({t})" for t in terms) + ")"


def _fill(cur: Any, pg: bool, indicators: Sequence[Indicator], now: datetime) -> None:
    """The incoming rows into the temporary table, in one statement, streamed."""
    text, date, flag = ("text", "timestamptz", "boolean") if pg else ("TEXT", "TEXT", "INTEGER")
    cur.execute(f"DROP TABLE IF EXISTS {_TMP}")
    cur.execute(
        f"CREATE TEMPORARY TABLE {_TMP} (pos integer PRIMARY KEY, type {text}, value {text}, "
        f"provider {text}, to_ids {flag}, confidence integer, tlp {text}, event {text}, "
        f"threat_level integer, first_seen {date}, last_seen {date}, expires {date}, "
        f"comment {text}, whitelist {flag}, if_in {text}, extra {text}, floor {date})"
    )
    rows = _rows(indicators, now, pg)
    if pg:
        names = ", ".join(("pos", *_COLS, "floor"))
        with cur.copy(f"COPY {_TMP} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        marks = ", ".join("?" * (len(_COLS) + 2))
        cur.executemany(f"INSERT INTO {_TMP} VALUES ({marks})", rows)


def _fill_keep(cur: Any, pg: bool, keep: Sequence[int]) -> None:
    cur.execute(f"DROP TABLE IF EXISTS {_TMP}_keep")
    cur.execute(f"CREATE TEMPORARY TABLE {_TMP}_keep (pos integer PRIMARY KEY)")
    if pg:
        with cur.copy(f"COPY {_TMP}_keep (pos) FROM STDIN") as copy:
            for pos in keep:
                copy.write_row((pos,))
    else:
        cur.executemany(f"INSERT INTO {_TMP}_keep VALUES (?)", ((p,) for p in keep))


def _rows(indicators: Sequence[Indicator], now: datetime, pg: bool) -> Iterator[tuple[Any, ...]]:
    defaults = default_expiries(now)
    # Dates as the ORM stores them: naive UTC text on SQLite, aware values on PostgreSQL;
    # the default expiries and their floors computed once per type, not per row.
    shown = {t: _date(d, pg) for t, d in defaults.items()}
    floors = {t: _date(d - EXPIRY_SLACK, pg) for t, d in defaults.items()}
    null = "null"
    for pos, i in enumerate(indicators):
        if i.expires is None and i.type in shown:
            expires = floor = shown[i.type]
            floor = floors[i.type]
        else:
            expires = floor = _date(i.expires, pg)
        yield (
            pos, i.type, i.value, i.provider, i.to_ids, i.confidence, i.tlp, i.event,
            i.threat_level,
            None if i.first_seen is None else _date(i.first_seen, pg),
            None if i.last_seen is None else _date(i.last_seen, pg),
            expires, i.comment, i.whitelist, ",".join(i.if_in),
            orjson.dumps(dict(i.extra)).decode() if i.extra else null, floor,
        )  # fmt: skip


def _date(value: datetime | None, pg: bool) -> Any:
    if value is None:
        return None
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value if pg else value.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


# What the live index reads of each active row, in this order.
ROW = ("type", "value", "provider", "to_ids", "confidence", "tlp", "event", "threat_level",
       "whitelist", "if_in", "extra")  # fmt: skip


def active_rows(session: Session, now: datetime, chunk: int = 20_000) -> Iterator[Sequence[Any]]:
    """The unexpired indicators as tuples (ROW), streamed `chunk` at a time."""
    from correlator.store import IndicatorRow

    t = IndicatorRow.__table__.c
    q = select(*(t[c] for c in ROW)).where(or_(t.expires.is_(None), t.expires > now))
    result = session.execute(q, execution_options={"stream_results": True, "yield_per": chunk})
    for part in result.partitions():
        yield from part
