"""Job leases: several replicas schedule the same jobs; each run first takes the
job's lease in the database, so one replica runs it per interval and the others
skip (and the last run's outcome is on record for all of them)."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta

from sqlalchemy import String, Text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base, Database, UtcDateTime

HOLDER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"  # this process


class JobLease(Base):
    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    until: Mapped[datetime] = mapped_column(UtcDateTime())
    last_run: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_outcome: Mapped[str] = mapped_column(Text)


def acquire(db: Database, name: str, ttl: timedelta, holder: str = HOLDER) -> bool:
    """Take the lease for `ttl` unless another holder has it; True if this one runs."""
    now = utcnow()
    try:
        with db.transaction() as s:
            row = s.get(JobLease, name, with_for_update=True)
            if row is None:
                s.add(JobLease(name=name, holder=holder, until=now + ttl, last_outcome=""))
                return True
            if row.until > now and row.holder != holder:
                return False
            row.holder, row.until = holder, now + ttl
            return True
    except IntegrityError:  # another replica inserted the first lease at the same moment
        return False


def finish(db: Database, name: str, outcome: str) -> None:
    with db.transaction() as s:
        row = s.get(JobLease, name)
        if row is not None:
            row.last_run, row.last_outcome = utcnow(), outcome[:2000]
