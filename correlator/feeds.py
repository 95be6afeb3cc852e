"""Indicator feeds refreshed on a schedule: local files or folders (a MISP feed
folder, CSV, free text, Zeek intel, STIX, MISP event JSON) and http(s) URLs of
single-file feeds. A feed that fails leaves its last good indicators active and
its failure on record (the sources page, `GET /api/v1/sources`). What each feed
gave last (its SHA-256, its ETag) is kept in the database (correlator.syncstate),
so an unchanged feed is not taken in again, by this replica or another — for a day
at most (bulkstore.EXPIRY_SLACK): a full intake is what moves the default expiries
forward, so a feed that stays the same for weeks keeps its indicators active."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from core.clock import utcnow
from core.db import Database
from correlator import bulkstore, sources, syncstate
from correlator.intake import TakeIn
from rules.sources import IndicatorFileError, file_digest, stream_indicator_file

log = logging.getLogger("vigia.feeds")
ACTOR = "system:feeds"
KIND = "feed"
MAX_FEED = 256 * 1024 * 1024


@dataclass(frozen=True)
class FeedOutcome:
    feed: str
    ok: bool
    loaded: int = 0
    new: int = 0
    message: str = ""


def _fetch(url: str, folder: Path, etag: str | None) -> tuple[Path | None, str | None]:
    """The feed into `folder`, with its ETag; (None, etag) when the server says it has
    not changed since the ETag given."""
    name = Path(urlsplit(url).path).name or "feed.txt"
    target = folder / name
    headers = {"If-None-Match": etag} if etag else {}
    with httpx.stream("GET", url, timeout=60, follow_redirects=True, headers=headers) as resp:
        if resp.status_code == 304 and etag:
            return None, etag
        if resp.status_code != 200:
            raise IndicatorFileError(Path(name), f"{url} answered {resp.status_code}")
        size = 0
        with target.open("wb") as fh:
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > MAX_FEED:
                    raise IndicatorFileError(Path(name), f"{url}: larger than {MAX_FEED} bytes")
                fh.write(chunk)
        return target, resp.headers.get("etag")


def refresh(db: Database, take_in: TakeIn, feed: str) -> FeedOutcome:
    """Load one feed now and take it in (warninglists, retro-hunt, sources page).

    A feed found as it was last taken in (the same ETag or the same SHA-256, by any
    replica: the state is in the database) less than a day ago is not read again."""
    now = utcnow()
    with db.transaction(write=False) as session:
        last = syncstate.get(session, KIND, feed)
    if not bulkstore.taken_in_lately(last, now):
        last = {}  # neither ETag nor digest: read and take in whole
    try:
        with tempfile.TemporaryDirectory() as tmp:
            etag = None
            if feed.startswith(("http://", "https://")):
                fetched, etag = _fetch(feed, Path(tmp), last.get("etag"))
            else:
                fetched = Path(feed)
            digest = last.get("sha256") if fetched is None else file_digest(fetched)
            if fetched is None or (digest is not None and digest == last.get("sha256")):
                with db.transaction() as session:
                    sources.unchanged(session, feed, KIND)
                return FeedOutcome(feed, True, message="unchanged")
            # A CSV feed is read as it is stored, no list of its records (a million
            # of them held ~650 MB); the other formats load whole first.
            result, records = stream_indicator_file(fetched, strict=False)
            result.stream = records
            with db.transaction() as session:
                intake = take_in(session, result, ACTOR, feed)
                if result.rejected and not intake.loaded:  # rolled back: nothing kept
                    raise IndicatorFileError(fetched, result.rejected[0])
                state = {"sha256": digest, "etag": etag, "at": now.isoformat()}
                syncstate.put(session, KIND, feed, state)
    except (IndicatorFileError, httpx.HTTPError, OSError) as exc:
        message = str(exc).replace(str(tempfile.gettempdir()), "…")
        with db.transaction() as session:
            sources.record(session, feed, KIND, False, message)
        log.warning("feed %s failed, its last indicators stay: %s", feed, message)
        return FeedOutcome(feed, False, message=message)
    return FeedOutcome(feed, True, intake.loaded, intake.new)


def refresh_all(db: Database, take_in: TakeIn, feeds: Sequence[str]) -> list[FeedOutcome]:
    """Each feed in turn; one failing does not stop the others."""
    return [refresh(db, take_in, f) for f in feeds]
