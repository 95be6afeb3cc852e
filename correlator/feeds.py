"""Indicator feeds refreshed on a schedule: local files or folders (a MISP feed
folder, CSV, free text, Zeek intel, STIX, MISP event JSON) and http(s) URLs of
single-file feeds. A feed that fails leaves its last good indicators active and
its failure on record (the sources page, `GET /api/v1/sources`)."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from core.db import Database
from correlator import sources
from correlator.intake import TakeIn
from rules.sources import IndicatorFileError, load_indicator_file

log = logging.getLogger("vigia.feeds")
ACTOR = "system:feeds"
MAX_FEED = 256 * 1024 * 1024


@dataclass(frozen=True)
class FeedOutcome:
    feed: str
    ok: bool
    loaded: int = 0
    new: int = 0
    message: str = ""


def _fetch(url: str, folder: Path) -> Path:
    name = Path(urlsplit(url).path).name or "feed.txt"
    target = folder / name
    with httpx.stream("GET", url, timeout=60, follow_redirects=True) as resp:
        if resp.status_code != 200:
            raise IndicatorFileError(Path(name), f"{url} answered {resp.status_code}")
        size = 0
        with target.open("wb") as fh:
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > MAX_FEED:
                    raise IndicatorFileError(Path(name), f"{url}: larger than {MAX_FEED} bytes")
                fh.write(chunk)
    return target


def refresh(db: Database, take_in: TakeIn, feed: str) -> FeedOutcome:
    """Load one feed now and take it in (warninglists, retro-hunt, sources page)."""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = (
                _fetch(feed, Path(tmp)) if feed.startswith(("http://", "https://")) else Path(feed)
            )
            result = load_indicator_file(path, strict=False)
            if result.rejected and not result.indicators:
                raise IndicatorFileError(path, result.rejected[0])
            with db.transaction() as session:
                intake = take_in(session, result, ACTOR, feed)
    except (IndicatorFileError, httpx.HTTPError, OSError) as exc:
        message = str(exc).replace(str(tempfile.gettempdir()), "…")
        with db.transaction() as session:
            sources.record(session, feed, "feed", False, message)
        log.warning("feed %s failed, its last indicators stay: %s", feed, message)
        return FeedOutcome(feed, False, message=message)
    return FeedOutcome(feed, True, intake.loaded, intake.new)


def refresh_all(db: Database, take_in: TakeIn, feeds: Sequence[str]) -> list[FeedOutcome]:
    """Each feed in turn; one failing does not stop the others."""
    return [refresh(db, take_in, f) for f in feeds]
