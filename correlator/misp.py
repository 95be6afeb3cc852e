"""The centre's link to MISP, as use cases: sync in (scheduled or by hand) and
sightings out. (Shared incidents go out through `incidents.mispshare`.)

Configured by VIGIA_MISP_URL and VIGIA_MISP_KEY_FILE; the last timestamp seen
per server is kept in the database (correlator.syncstate), so each sync, from
whichever replica, asks only for what changed. Older versions kept it in the data
directory (`misp-sync.json`): `import_old_state` takes that in once, on start.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

from core import audit
from core.db import Database
from core.settings import Settings
from correlator import sightings, sources, syncstate, unchanged
from correlator.intake import Intake, TakeIn
from rules.sources.mispsync import MispServer, SyncError, Tasks

ACTOR = "system:misp-sync"
KIND = "misp-sync"
OLD_STATE = "misp-sync.json"  # {server URL: last event timestamp}, before the database

log = logging.getLogger("vigia.misp")


@dataclass(frozen=True)
class SyncOutcome:
    since: int | None
    latest: int | None
    intake: Intake
    skipped: int


def server(
    settings: Settings, url: str | None = None, key: str | None = None, verify_tls: bool = True
) -> MispServer | None:
    """The configured MISP (or the one given), or None when there is none."""
    url = url or settings.misp_url
    if key is None and settings.misp_key_file is not None:
        key = settings.misp_key_file.read_text().strip()
    if not url or not key:
        return None
    return MispServer(url, key, verify_tls=verify_tls and settings.misp_verify_tls)


def sync(
    db: Database,
    take_in: TakeIn,
    misp: MispServer,
    full: bool = False,
    actor: str = ACTOR,
    progress: Tasks | None = None,
) -> SyncOutcome:
    """Pull what changed since the last sync (any replica's: the point is in the
    database) and take it in, retro-hunt included; the point moves in the same
    transaction."""
    with db.transaction(write=False) as session:
        since = None if full else syncstate.get(session, KIND, misp.url).get("timestamp")
        comparable = since is None and unchanged.kept(session, misp.url)
    # SQLite: every writer waits on a write transaction, so the pages are read (spooled)
    # before it opens. PostgreSQL: streamed into it as they come, unless this pull may
    # be the same as the last full one (everything again, and that one is kept): then
    # spooled, so that an unchanged pull is found the same before it is read again.
    spooled = db.engine.dialect.name != "postgresql" or comparable
    pulled = None
    try:
        pulled = misp.pull(since, spooled=spooled, progress=progress)
        with db.transaction() as session:
            intake = take_in(session, pulled.result, actor)
            if pulled.latest is not None:
                syncstate.put(session, KIND, misp.url, {"timestamp": pulled.latest})
    except SyncError as exc:  # nothing of this pull taken in; the failure is on record
        with db.transaction() as session:
            sources.record(session, misp.url, KIND, False, str(exc))
        raise
    finally:
        if pulled is not None and isinstance(pulled.result.stream, Generator):
            pulled.result.stream.close()  # a page thread stopped, a spool file gone
    return SyncOutcome(since, pulled.latest, intake, sum(pulled.result.skipped.values()))


def sync_point(db: Database, url: str) -> int | None:
    """The last MISP event timestamp taken in from the server at `url`, if any."""
    with db.transaction(write=False) as session:
        return syncstate.get(session, KIND, url).get("timestamp")


def deliver_sightings(db: Database, misp: MispServer) -> tuple[int, int]:
    """Send the triage verdicts waiting in the sightings outbox. Returns (sent, failed)."""
    with db.transaction() as session:
        if not sightings.pending(session, limit=1):
            return 0, 0
        return sightings.deliver(session, misp.sighting_sender())


def import_old_state(db: Database, data_dir: Path, actor: str = ACTOR) -> dict[str, int] | None:
    """An older version's sync points (`misp-sync.json` in the data directory) into the
    database, once, so the first sync after the upgrade asks only for what changed
    since: a server the database already has a point for keeps it (that one is newer,
    some replica synced since). Audited; the file is then renamed
    `misp-sync.json.imported`. Returns the points taken, None when there was no file
    (or one that is not a sync state: left in place, and said in the log)."""
    path = data_dir / OLD_STATE
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("%s not imported: %s", path, exc)
        return None
    points = (
        {u: t for u, t in state.items() if isinstance(t, int)} if isinstance(state, dict) else {}
    )
    if not points:
        log.warning("%s not imported: no server with a timestamp in it", path)
        return None
    taken: dict[str, int] = {}
    with db.transaction() as session:
        for url, timestamp in points.items():
            if not syncstate.get(session, KIND, url):
                syncstate.put(session, KIND, url, {"timestamp": timestamp})
                taken[url] = timestamp
        kept = sorted(set(points) - set(taken))
        detail = {"file": str(path), "imported": taken, "kept_newer": kept}
        audit.append(session, actor, "misp.sync_state_imported", "sync_state", KIND, detail)
    # (FileNotFoundError: another process on this data directory renamed it first.)
    with contextlib.suppress(FileNotFoundError):
        path.replace(path.with_name(OLD_STATE + ".imported"))
    return taken
