"""Files for the analysts: a sensor set to send the bytes of small files, the centre
keeping each once by SHA-256, analysts (only) fetching them back."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import httpx

from correlator.filestore import FileStore
from tests.centre import ServeProcess, cli_token
from tests.wire import EICAR, smtp_pcap


def test_a_sensor_sends_small_files_the_centre_keeps_each_once(tmp_path: Path) -> None:
    big = b"B" * 5000
    pcap = tmp_path / "mail.pcap"
    # EICAR twice (two mails), and a file over the cap
    smtp_pcap(pcap, [("eicar.com", EICAR), ("again.com", EICAR), ("big.bin", big)])
    cfg = tmp_path / "sensor.toml"
    cfg.write_text("[sensor]\nsend_files_max_bytes = 4096\n")
    with ServeProcess(tmp_path) as centre:
        token = tmp_path / "sensor.token"
        token.write_text(cli_token(centre.env, "--role", "sensor", "--name", "edge-f"))
        analyst = cli_token(centre.env, "--role", "analyst")
        run = subprocess.run(
            [sys.executable, "-m", "vigia", "sensor", "run", "--pcap", str(pcap),
             "--config", str(cfg), "--server", centre.url, "--token-file", str(token),
             "--observer", "edge-f", "--spool-dir", str(tmp_path / "spool")],
            capture_output=True, text=True, timeout=60, env={**os.environ},
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        eicar = hashlib.sha256(EICAR).hexdigest()
        got = httpx.get(
            f"{centre.url}/api/v1/files/{eicar}", headers={"Authorization": f"Bearer {analyst}"}
        )
        assert got.status_code == 200 and got.content == EICAR
        assert got.headers["content-type"] == "application/octet-stream"
        assert "attachment" in got.headers["content-disposition"]
        sensor_get = httpx.get(
            f"{centre.url}/api/v1/files/{eicar}",
            headers={"Authorization": f"Bearer {token.read_text().strip()}"},
        )
        assert sensor_get.status_code == 403
        missing = hashlib.sha256(big).hexdigest()
        none = httpx.get(
            f"{centre.url}/api/v1/files/{missing}", headers={"Authorization": f"Bearer {analyst}"}
        )
        assert none.status_code == 404  # over the sensor's cap: hashed and named, not sent
        bad = httpx.get(
            f"{centre.url}/api/v1/files/../../secret_key",
            headers={"Authorization": f"Bearer {analyst}"},
        )
        assert bad.status_code in (404, 422)
        fleet = httpx.get(
            f"{centre.url}/api/v1/sensors", headers={"Authorization": f"Bearer {analyst}"}
        ).json()
        alerts = httpx.get(
            f"{centre.url}/api/v1/alerts", headers={"Authorization": f"Bearer {analyst}"}
        ).json()["alerts"]
    counters = fleet[0]["counters"]
    # EICAR once (the second copy is known by its digest), the mail bodies, not the big one
    assert counters["files_too_large"] == 1 and counters["files_refused"] == 0
    assert counters["files_sent"] == counters["files_spooled"] >= 2
    kept = list((tmp_path / "data" / "files").rglob("*"))
    kept_files = sorted(p.name for p in kept if p.is_file())
    assert eicar in kept_files and missing not in kept_files
    assert all(p.stat().st_mode & 0o077 == 0 for p in kept if p.is_file())
    # The centre did not scan the sent files again: one YARA alert per sighting, from the sensor
    eicar_alerts = [a for a in alerts if a.get("rule", {}).get("name") == "eicar_test_file"]
    assert sorted(a["event"]["count"] for a in eicar_alerts) == [1, 1]


def test_the_file_store_keeps_bytes_once_by_digest(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    sha, new = store.keep(b"sample")
    assert new and store.find(sha) is not None and store.find(sha.upper()) is not None
    assert store.keep(b"sample") == (sha, False)
    assert store.find("../" + sha) is None and store.find("0" * 63) is None
