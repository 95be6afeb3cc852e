"""Command-line behaviour the README's synopsis shows and no other test ran."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import corpus
from tests.test_scan import alerts_of, vigia
from vigia.wiring import Services


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
    from core.settings import load_settings
    from core.tokens import Role
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


def test_sync_full_ignores_the_last_sync(tmp_path: Path) -> None:
    from tests.centre import free_port
    from tests.mispserver import KEY, MispOnLoopback
    from tests.test_mispsync import _event

    event = _event(
        "57c4445b-c548-4654-af0b-4be3950d210f.json", published=True, timestamp=1_700_000_000
    )
    key_file = tmp_path / "misp.key"
    key_file.write_text(KEY)
    env = {**os.environ, "VIGIA_DATA_DIR": str(tmp_path / "d"), "VIGIA_WARNINGLISTS": "false"}
    env.pop("VIGIA_DATABASE_URL", None)
    with MispOnLoopback([event], free_port()) as misp:

        def sync(*extra: str) -> subprocess.CompletedProcess[str]:
            args = ["indicators", "sync", "--misp-url", misp.url, "--misp-key-file", str(key_file)]
            return subprocess.run(
                [sys.executable, "-m", "vigia", *args, *extra],
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
            )

        assert sync().returncode == 0  # the next plain sync asks only for what changed since
        full = sync("--full")
        assert full.returncode == 0, full.stderr
        assert misp.requests[-1].get("timestamp") is None  # everything, again
        assert "since the beginning" in full.stderr


def test_restore_force_overwrites_an_existing_store(tmp_path: Path) -> None:
    from certification.registry import Registry
    from core.settings import load_settings
    from vigia.wiring import build

    data = tmp_path / "data"
    env = {**os.environ, "VIGIA_DATA_DIR": str(data)}
    env.pop("VIGIA_DATABASE_URL", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "vigia", *args], capture_output=True, text=True, env=env
        )

    def add(entity: str) -> None:
        services = build(load_settings(data_dir=data, database_url=""))
        with services.db.transaction() as s:
            Registry.add(s, entity, entity, "central", [], [], "test")
        services.close()

    def entities() -> set[str]:
        services = build(load_settings(data_dir=data, database_url=""))
        with services.db.transaction(write=False) as s:
            found = {e.id for e in Registry.all(s)}
        services.close()
        return found

    add("min-a")
    archive = str(tmp_path / "b.tar.gz")
    assert run("backup", archive).returncode == 0
    add("min-b")
    refused = run("restore", archive)
    assert refused.returncode == 2 and "--force" in refused.stderr
    forced = run("restore", archive, "--force")
    assert forced.returncode == 0 and "audit chain intact" in forced.stderr, forced.stderr
    assert entities() == {"min-a"}  # back to the backup's state


def test_up_without_demo_data_in_the_named_data_dir(tmp_path: Path) -> None:
    import httpx

    from tests.test_up import _free_port, _stop, _wait

    port, data = _free_port(), tmp_path / "elsewhere"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("VIGIA_DATA_DIR", None)
    env.pop("VIGIA_DATABASE_URL", None)
    args = ["up", "--no-demo", "--data-dir", str(data), "--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "vigia", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        _wait(port, proc)
        assert proc.stdout is not None
        token = proc.stdout.readline().strip()  # the first start's admin token
        alerts = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/alerts", headers={"Authorization": f"Bearer {token}"}
        ).json()
    finally:
        _out, err = _stop(proc)
    assert alerts["alerts"] == []
    assert "datos de demostración" not in err
    assert (data / "vigia.db").is_file() and not (tmp_path / "vigia-data").exists()


def test_sensor_run_with_deep_set_ships_what_the_tshark_pass_sees(
    tmp_path: Path, sqlite_services: Services
) -> None:
    import shutil

    import httpx
    import pytest

    from core.tokens import Role
    from correlator.store import IndicatorStore
    from rules.indicator import Indicator
    from tests.centre import Centre, free_port
    from tests.conftest import bearer, make_token

    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    pcap = corpus(
        "zeek-traces", "tls", "scripts.policy.protocols.ssl.ssl-log-ext", "pcap", "dtls1_2.pcap"
    )
    services = sqlite_services
    token_file = tmp_path / "token"
    token_file.write_text(make_token(services, Role.SENSOR, name="edge-deep"))
    analyst = bearer(make_token(services, Role.ANALYST))
    with services.db.transaction() as s:
        IndicatorStore.save(
            s, [Indicator("ja3-fingerprint-md5", "3c3d129780d0066cd8936a6291a8d44f", "t")]
        )
    config = tmp_path / "sensor.toml"
    config.write_text("[sensor]\ndeep = true\n")  # a setting of the file; there is no --deep flag
    with Centre(services, free_port()) as centre:
        args = ["--pcap", str(pcap), "--server", centre.url, "--token-file", str(token_file)]
        args += ["--observer", "edge-deep", "--spool-dir", str(tmp_path / "spool")]
        args += ["--config", str(config)]
        run = subprocess.run(
            [sys.executable, "-m", "vigia", "sensor", "run", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        alerts = httpx.get(f"{centre.url}/api/v1/alerts", headers=analyst).json()["alerts"]
    assert [
        (a["threat"]["enrichments"][0]["matched"]["field"], a["network"]["protocol"])
        for a in alerts
    ] == [("tls.client.ja3", "dtls")]


def test_json_logs_carry_uvicorns_lines_too(tmp_path: Path) -> None:
    import json
    import socket

    from tests.test_up import _free_port, _stop, _wait

    port = _free_port()
    env = {**os.environ, "VIGIA_DATA_DIR": str(tmp_path), "VIGIA_LOG_FORMAT": "json"}
    env.pop("VIGIA_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "vigia", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        _wait(port, proc)
        with socket.create_connection(("127.0.0.1", port)) as conn:  # not HTTP: uvicorn warns
            conn.sendall(b"\x00\x01 not http at all\r\n\r\n")
            conn.recv(1024)
    finally:
        _out, err = _stop(proc)
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(r["log.logger"].startswith("uvicorn") for r in records), err
    assert all({"@timestamp", "log.level", "message"} <= r.keys() for r in records)
    assert "datos de demostración" not in err  # `vigia serve` is `vigia up` without the demo
