"""Command-line behaviour the README's synopsis shows and no other test ran."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import corpus
from tests.test_scan import alerts_of, vigia


def test_scan_takes_several_captures_and_several_indicator_files(tmp_path: Path) -> None:
    wikipedia = corpus("zeek-traces", "dns-http", "opt.basic", "pcap", "wikipedia.pcap")
    get = corpus("zeek-traces", "dns-http", "core.tcp.reassembly-known-ports", "pcap", "get.pcap")
    names = tmp_path / "names.csv"
    names.write_text("type,value\nhostname,upload.wikimedia.org\n")
    intel = tmp_path / "intel.dat"
    intel.write_text("#fields\tindicator\tindicator_type\n208.80.152.2\tIntel::ADDR\n")
    both = vigia("scan", wikipedia, get, "-i", names, "--indicators", intel)
    assert both.returncode == 0, both.stderr
    assert "scanned 2 file(s)" in both.stderr
    fields = sorted(
        a["threat"]["enrichments"][0]["matched"]["field"] for a in alerts_of(both.stdout)
    )
    assert fields == [
        "destination.ip",
        "dns.question.name",
        "url.domain",
    ]  # both indicator files count
    one = vigia("scan", wikipedia, "-i", names)
    assert len(alerts_of(one.stdout)) == 2  # the second -i added the address


def test_token_revoke_by_id(tmp_path: Path) -> None:
    from vigia.core.settings import load_settings
    from vigia.core.tokens import Role
    from vigia.wiring import build

    data = tmp_path / "data"
    services = build(load_settings(data_dir=data, database_url=""))
    with services.db.transaction() as s:
        token, row = services.tokens.create(s, Role.ANALYST, "ana", None, "test")
    token_id = row.id
    services.close()
    env = {**os.environ, "VIGIA_DATA_DIR": str(data)}
    env.pop("VIGIA_DATABASE_URL", None)

    def revoke(ident: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "vigia", "token", "revoke", ident],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    done = revoke(token_id)
    assert done.returncode == 0 and f"revoked {token_id}" in done.stderr, done.stderr
    services = build(load_settings(data_dir=data, database_url=""))
    with services.db.transaction(write=False) as s:
        assert services.tokens.authenticate(s, token) is None
    services.close()
    again = revoke(token_id)  # already revoked: one line, exit 2
    assert again.returncode == 2 and "no active token" in again.stderr
    assert "Traceback" not in again.stderr
