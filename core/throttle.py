"""The brute-force throttle: failed logins and bearer checks, counted per client
address and per token prefix, lock that key out for a while (429 Retry-After).

State lives in the database, not in a process: several `vigia serve` replicas
behind a balancer share one count, so a guesser gains nothing by being spread
over them. Only failures write; a locked key is refused before any token is
checked, with no write, so a flood during a lockout costs one indexed read per
request. One audit record marks each lockout (not each attempt), so a flood
cannot bloat the audit chain.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Integer, String, bindparam, delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from core import audit
from core.clock import iso
from core.db import Base, Database, UtcDateTime

PREFIX_CHARS = 12  # "vga_" and 8 of the token's random characters
ACTOR = "system:throttle"


class ThrottleRow(Base):
    __tablename__ = "auth_throttle"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[datetime] = mapped_column(UtcDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


@dataclass(frozen=True)
class Limits:
    failures: int  # this many failures within `window` ...
    window: timedelta
    lockout: timedelta  # ... lock the key out this long


def keys(address: str, token: str | None) -> list[str]:
    """The keys one attempt counts against: its address, and its token's prefix.

    An IPv6 client counts as its /64: one subscriber gets a whole /64, and
    hopping inside it must not reset the count."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        ip = None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        address = str(ipaddress.IPv6Network((ip, 64), strict=False))
    found = [f"addr:{address[:100]}"]
    if token:
        found.append(f"prefix:{token[:PREFIX_CHARS]}")
    return found


# Built once: this read runs on every bearer check, and building the statement
# and going through the ORM cost more than the query itself.
_LOCKED = select(ThrottleRow.locked_until).where(
    ThrottleRow.key.in_(bindparam("keys", expanding=True)),
    ThrottleRow.locked_until > bindparam("now", type_=UtcDateTime()),
)


def retry_after(session: Session, keys_: list[str], now: datetime) -> int:
    """Seconds until every one of these keys is free again (0: not locked)."""
    until = session.connection().execute(_LOCKED, {"keys": keys_, "now": now}).scalars()
    latest = max((u for u in until if u is not None), default=None)
    return max(1, math.ceil((latest - now).total_seconds())) if latest else 0


def fail(db: Database, keys_: list[str], limits: Limits, now: datetime) -> int:
    """Count one failure against each key; returns the lockout seconds if this one
    started a lockout (0 otherwise)."""
    try:
        return _fail(db, keys_, limits, now)
    except IntegrityError:  # another replica inserted the same key first: count again
        return _fail(db, keys_, limits, now)


def _fail(db: Database, keys_: list[str], limits: Limits, now: datetime) -> int:
    started = 0
    with db.transaction() as s:
        for key in keys_:
            row = s.get(ThrottleRow, key, with_for_update=True)
            if row is None:
                _forget_stale(s, limits, now)  # the table grows only here: keep it small
                row = ThrottleRow(key=key, failures=0, window_start=now)
                s.add(row)
            if now - row.window_start > limits.window:
                row.failures, row.window_start = 0, now
            row.failures += 1
            if row.failures >= limits.failures:
                row.locked_until = now + limits.lockout
                row.failures, row.window_start = 0, now
                kind, _, value = key.partition(":")
                audit.append(
                    s,
                    ACTOR,
                    "auth.lockout",
                    "address" if kind == "addr" else "token_prefix",
                    value,
                    {
                        "failures": limits.failures,
                        "window_s": int(limits.window.total_seconds()),
                        "until": iso(row.locked_until),
                    },
                )
                started = int(limits.lockout.total_seconds())
            s.flush()
    return started


def _forget_stale(session: Session, limits: Limits, now: datetime) -> None:
    """Rows whose window has passed and that hold no lockout count for nothing (a
    guesser with random tokens leaves one per guess)."""
    session.execute(
        delete(ThrottleRow).where(
            ThrottleRow.window_start < now - limits.window,
            or_(ThrottleRow.locked_until.is_(None), ThrottleRow.locked_until < now),
        )
    )
