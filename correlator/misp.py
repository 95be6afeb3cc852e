"""The centre's link to MISP, as use cases: sync in (scheduled or by hand) and
sightings out. (Shared incidents go out through `incidents.mispshare`.)

Configured by VIGIA_MISP_URL and VIGIA_MISP_KEY_FILE; the last timestamp seen
per server is kept, so each sync asks only for what changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from core.db import Database
from core.settings import Settings
from correlator import sightings, sources
from correlator.intake import Intake, TakeIn
from rules.sources.mispsync import MispServer, SyncError

ACTOR = "system:misp-sync"


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
    state_path: Path,
    full: bool = False,
    actor: str = ACTOR,
) -> SyncOutcome:
    """Pull what changed since the last sync and take it in (retro-hunt included)."""
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    since = None if full else state.get(misp.url)
    try:
        result, latest = misp.pull(since)
    except SyncError as exc:  # the indicators already held stay; the failure is on record
        with db.transaction() as session:
            sources.record(session, misp.url, "misp-sync", False, str(exc))
        raise
    with db.transaction() as session:
        intake = take_in(session, result, actor)
    if latest is not None:
        state[misp.url] = latest
        tmp = state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(state_path)
    return SyncOutcome(since, latest, intake, sum(result.skipped.values()))


def deliver_sightings(db: Database, misp: MispServer) -> tuple[int, int]:
    """Send the triage verdicts waiting in the sightings outbox. Returns (sent, failed)."""
    with db.transaction() as session:
        if not sightings.pending(session, limit=1):
            return 0, 0
        return sightings.deliver(session, misp.sighting_sender())
