"""The staging of a bulk indicator write: the incoming rows into temporary tables.

One streamed statement (executemany on SQLite, COPY on PostgreSQL) fills
TMP, a row per indicator; what most of a source's rows share (a feed's or an
event's settings) goes once per distinct set into TMP_meta. The statements
that write the store from them are correlator.bulkstore's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson

from rules.indicator import Indicator

TMP = "vigia_indicators_in"

# What is the same for most of a source's rows (a feed's or a file's settings, an event's):
# kept once per distinct set in a second temporary table, named by each row's `m`.
META = ("to_ids", "confidence", "tlp", "event", "threat_level", "whitelist", "if_in")
# The temporary table's own columns after `pos`, then `m` and `d`.
OWN = ("type", "value", "provider", "first_seen", "last_seen", "expires", "comment", "extra")
# The staged rows with their shared settings, as `t` and `m` in the statements.
STAGED = f"{TMP} t JOIN {TMP}_meta m ON m.id = t.m"


def fill(cur: Any, pg: bool, indicators: Iterable[Indicator], defaults: dict[str, datetime]) -> int:
    """The incoming rows into the temporary table, in one statement, streamed; one row
    per key (the last given stands). Returns how many were given."""
    text, date, flag = ("text", "timestamptz", "boolean") if pg else ("TEXT", "TEXT", "INTEGER")
    cur.execute(f"DROP TABLE IF EXISTS {TMP}")
    cur.execute(f"DROP TABLE IF EXISTS {TMP}_meta")
    cur.execute(
        f"CREATE TEMPORARY TABLE {TMP} (pos integer PRIMARY KEY, type {text}, value {text}, "
        f"provider {text}, first_seen {date}, last_seen {date}, expires {date}, "
        f"comment {text}, extra {text}, m integer, d {flag})"
    )
    cur.execute(
        f"CREATE TEMPORARY TABLE {TMP}_meta (id integer PRIMARY KEY, to_ids {flag}, "
        f"confidence integer, tlp {text}, event {text}, threat_level integer, "
        f"whitelist {flag}, if_in {text})"
    )
    given = [0]
    shared: dict[tuple[Any, ...], int] = {}
    rows = _rows(indicators, defaults, pg, given, shared)
    if pg:
        names = ", ".join(("pos", *OWN, "m", "d"))
        with cur.copy(f"COPY {TMP} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        marks = ", ".join("?" * (len(OWN) + 3))
        cur.executemany(f"INSERT INTO {TMP} VALUES ({marks})", rows)
    mark = "%s" if pg else "?"
    cur.executemany(
        f"INSERT INTO {TMP}_meta VALUES ({', '.join([mark] * (len(META) + 1))})",
        [(n, *values[:-1], ",".join(values[-1])) for values, n in shared.items()],
    )
    if pg:
        cur.execute(f"ANALYZE {TMP}")  # temporary tables have no statistics otherwise
        cur.execute(f"ANALYZE {TMP}_meta")
    return given[0]


def dedup(cur: Any) -> None:
    """The earlier duplicates of a key dropped (the last given stands): the key indexed once
    filled (a sorted build, far cheaper than a million inserts into a B-tree), then one
    self-join. Only when something is to be written: an unchanged source skips it."""
    cur.execute(f"CREATE INDEX {TMP}_key ON {TMP} (type, value, provider, pos)")
    cur.execute(
        f"DELETE FROM {TMP} WHERE pos IN (SELECT a.pos FROM {TMP} a JOIN {TMP} b "
        "ON b.type = a.type AND b.value = a.value AND b.provider = a.provider AND b.pos > a.pos)"
    )


def _rows(
    indicators: Iterable[Indicator],
    defaults: dict[str, datetime],
    pg: bool,
    given: list[int],
    shared: dict[tuple[Any, ...], int],
) -> Iterator[tuple[Any, ...]]:
    """The temporary table's rows; `given[0]` is set to how many once all are read, and
    `shared` holds each distinct set of META values with its number (the rows' `m`).
    Dates as the ORM stores them: naive UTC text on SQLite, aware values on PostgreSQL;
    a default expiry is not written (`d` set: the statements name it per type)."""
    null = "null"
    pos = -1
    numbered = shared.setdefault
    for pos, i in enumerate(indicators):
        if i.expires is None and i.type in defaults:
            expires, d = None, True
        else:
            expires, d = stored_date(i.expires, pg), False
        m = (i.to_ids, i.confidence, i.tlp, i.event, i.threat_level, i.whitelist, i.if_in)
        yield (
            pos, i.type, i.value, i.provider,
            None if i.first_seen is None else stored_date(i.first_seen, pg),
            None if i.last_seen is None else stored_date(i.last_seen, pg),
            expires, i.comment,
            orjson.dumps(dict(i.extra)).decode() if i.extra else null,
            numbered(m, len(shared)), d,
        )  # fmt: skip
    given[0] = pos + 1


def stored_date(value: datetime | None, pg: bool) -> Any:
    """A date as the ORM stores it: naive UTC text on SQLite, aware on PostgreSQL."""
    if value is None:
        return None
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value if pg else value.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
