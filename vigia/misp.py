"""The centre's link to MISP: scheduled (or by hand) sync in, sightings and shared
incidents out.

Configured by VIGIA_MISP_URL and VIGIA_MISP_KEY_FILE; the last timestamp
seen per server is kept in the data dir, so each sync asks only for what
changed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from correlator import sightings, sources
from correlator.intake import Intake
from incidents import mispshare
from rules.sources.mispsync import MispServer, SyncError
from vigia.wiring import Services

ACTOR = "system:misp-sync"


@dataclass(frozen=True)
class SyncOutcome:
    since: int | None
    latest: int | None
    intake: Intake
    skipped: int


def server(
    services: Services, url: str | None = None, key: str | None = None, verify_tls: bool = True
) -> MispServer | None:
    s = services.settings
    url = url or s.misp_url
    if key is None and s.misp_key_file is not None:
        key = s.misp_key_file.read_text().strip()
    if not url or not key:
        return None
    return MispServer(url, key, verify_tls=verify_tls and s.misp_verify_tls)


def sync(
    services: Services, misp: MispServer, full: bool = False, actor: str = ACTOR
) -> SyncOutcome:
    """Pull what changed since the last sync and take it in (retro-hunt included)."""
    state_path = services.settings.data_dir / "misp-sync.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    since = None if full else state.get(misp.url)
    try:
        result, latest = misp.pull(since)
    except SyncError as exc:  # the indicators already held stay; the failure is on record
        with services.db.transaction() as session:
            sources.record(session, misp.url, "misp-sync", False, str(exc))
        raise
    with services.db.transaction() as session:
        intake = services.take_in(session, result, actor)
    if latest is not None:
        state[misp.url] = latest
        tmp = state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(state_path)
    return SyncOutcome(since, latest, intake, sum(result.skipped.values()))


def deliver_sightings(services: Services, misp: MispServer) -> tuple[int, int]:
    with services.db.transaction() as session:
        if not sightings.pending(session, limit=1):
            return 0, 0
        return sightings.deliver(session, misp.sighting_sender())


def deliver_shares(
    services: Services, misp: MispServer, ids: Sequence[int] = ()
) -> tuple[int, int]:
    """Push the incidents waiting in the MISP outbox (these only, when given)."""
    with services.db.transaction() as session:
        return mispshare.deliver(session, lambda: mispshare.event_sender(misp), ids)
