"""YARA on the live path: the centre's pack fetched by the sensor, contents scanned where
the bytes are, hits shipped as observations and turned into alerts by the centre."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from correlator.index import IndicatorIndex
from correlator.matcher import Matcher
from rules.yarapack import compile_pack
from sensors.engine import Sensor, SensorConfig
from sensors.observation import Observation
from sensors.pcapfile import read_packets
from sensors.rulepack import RulePack
from sensors.yarascan import PackError, YaraScanner, compile_shipped
from tests.centre import ServeProcess, cli_token, free_port
from tests.wire import EICAR, smtp_pcap

PACKS = Path(__file__).resolve().parent.parent / "rules" / "packs"
MARK_RULE = """rule vigia_test_marker : test exfil
{
    meta:
        description = "A marker planted by the tests"
        reference = "https://cert.example/marker"
    strings:
        $m = "VIGIA-MARKER-%s"
    condition:
        $m
}
"""


def _shipped(*paths: Path) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(orjson.dumps(compile_pack(list(paths)).shipped()))
    return doc


def test_the_centres_pack_compiles_on_the_sensor_and_refuses_what_does_not(
    tmp_path: Path,
) -> None:
    doc = _shipped(PACKS)
    pack = compile_shipped(doc)
    assert pack.count == len(list(compile_pack([PACKS]).rules)) and pack.count > 3
    assert pack.ruleset == f"packs@{doc['version']}"

    tampered = {**doc, "sources": {**doc["sources"], "extra": "rule x { condition: true }"}}
    with pytest.raises(PackError, match="do not match its sha256"):
        compile_shipped(tampered)

    from sensors.yarascan import sources_digest

    broken_sources = {"bad": "rule x { condition: $nope }"}
    broken = {**doc, "sources": broken_sources, "sha256": sources_digest(broken_sources)}
    with pytest.raises(PackError, match="does not compile here"):
        compile_shipped(broken)
    with pytest.raises(PackError, match="no rule sources"):
        compile_shipped({**doc, "sources": {}})


def test_a_sensor_hit_becomes_an_alert_with_the_rules_metadata(tmp_path: Path) -> None:
    (tmp_path / "mark.yar").write_text(MARK_RULE % "ONE")
    pcap = tmp_path / "mail.pcap"
    smtp_pcap(pcap, [("eicar.com", EICAR), ("datos.bin", b"xx VIGIA-MARKER-ONE yy")])
    shipped: list[Observation] = []
    scanner = YaraScanner(shipped.append)
    scanner.swap(compile_shipped(_shipped(PACKS, tmp_path)))
    engine = Sensor(SensorConfig(observer="edge-y"), shipped.append, scanner.scan)
    for ts, linktype, frame in read_packets(pcap):
        engine.packet(ts, linktype, frame)
    engine.finish()
    # Through the ECS document, as the centre receives it.
    received = [Observation.from_ecs(orjson.loads(orjson.dumps(o.to_ecs()))) for o in shipped]
    hits = [o for o in received if "rule.name" in o.values]
    assert sorted(o.values["rule.name"][0] for o in hits) == [
        "eicar_test_file",
        "vigia_test_marker",
    ]
    marker = next(o for o in hits if o.values["rule.name"] == ["vigia_test_marker"])
    assert marker.values["file.name"] == ["datos.bin"]
    assert marker.values["rule.category"] == ["test", "exfil"]
    assert marker.to_ecs()["file"]["size"] == len(b"xx VIGIA-MARKER-ONE yy")
    # Two mail bodies (the same text: scanned once, its verdict reused) and two files.
    c = scanner.counters
    assert (c.scans, c.repeats, c.hits) == (3, 1, 2)

    matches = Matcher(IndicatorIndex()).match_many(received)
    assert [m.matched_type for m in matches] == ["yara_match", "yara_match"]
    from correlator.alerts import AlertFolder

    folder = AlertFolder(3600)
    for m in matches:
        folder.add(m)
    alert = next(a for a in folder.alerts() if a["rule"]["name"] == "vigia_test_marker")
    assert alert["rule"]["description"] == "A marker planted by the tests"
    assert alert["rule"]["reference"] == "https://cert.example/marker"
    assert alert["tags"] == ["test", "exfil"]
    assert alert["observer"]["name"] == "edge-y" and alert["source"]["ip"] == "10.9.1.2"
    assert (
        alert["threat"]["enrichments"][0]["matched"]["atomic"]
        == marker.values["file.hash.sha256"][0]
    )


# -- real processes: `vigia serve` and `vigia sensor run` ---------------------------


def _yara_alerts(url: str, analyst: str) -> list[dict[str, Any]]:
    body = httpx.get(
        url + "/api/v1/alerts",
        params={"limit": 500},
        headers={"Authorization": f"Bearer {analyst}"},
    ).json()
    return [a for a in body["alerts"] if a.get("rule")]


def _sensor(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vigia", "sensor", "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_sensor_run_scans_an_smtp_attachment_with_the_centres_rule(tmp_path: Path) -> None:
    pcap = tmp_path / "mail.pcap"
    smtp_pcap(pcap, [("eicar.com", EICAR), ("datos.bin", b"..VIGIA-MARKER-ONE..")])
    centre = ServeProcess(tmp_path)
    (centre.yara / "mark.yar").write_text(MARK_RULE % "ONE")  # placed in the centre
    with centre:
        sensor_token = tmp_path / "sensor.token"
        sensor_token.write_text(cli_token(centre.env, "--role", "sensor", "--name", "edge-y"))
        analyst = cli_token(centre.env, "--role", "analyst")
        spool = tmp_path / "spool"
        proc = _sensor(
            "--pcap", str(pcap), "--server", centre.url, "--token-file", str(sensor_token),
            "--observer", "edge-y", "--spool-dir", str(spool),
        )  # fmt: skip
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        alerts = _yara_alerts(centre.url, analyst)
        fleet = httpx.get(
            centre.url + "/api/v1/sensors", headers={"Authorization": f"Bearer {analyst}"}
        ).json()
    names = sorted(a["rule"]["name"] for a in alerts)
    assert names == ["eicar_test_file", "vigia_test_marker"]
    marker = next(a for a in alerts if a["rule"]["name"] == "vigia_test_marker")
    assert marker["rule"]["description"] == "A marker planted by the tests"
    assert marker["observer"]["name"] == "edge-y"
    assert marker["threat"]["enrichments"][0]["matched"]["type"] == "yara_match"
    counters = fleet[0]["counters"]
    assert counters["yara_rules"] >= 5 and counters["yara_hits"] == 2
    assert counters["yara_packs_fetched"] == 1 and counters["yara_unscanned"] == 0
    # The pack is kept: a restart scans from the first packet even with the centre away.
    kept = json.loads((spool / "yara-pack.json").read_text())
    assert "mark" in kept["sources"]


def test_a_pack_swapped_while_the_sensor_runs_loses_no_packet(tmp_path: Path) -> None:
    watch = tmp_path / "watch"
    watch.mkdir()
    cfg = tmp_path / "sensor.toml"
    cfg.write_text("[sensor]\nheartbeat_s = 0.3\n")
    centre = ServeProcess(tmp_path)
    (centre.yara / "mark.yar").write_text(MARK_RULE % "ONE")
    with centre:
        sensor_token = tmp_path / "sensor.token"
        sensor_token.write_text(cli_token(centre.env, "--role", "sensor", "--name", "edge-w"))
        analyst = cli_token(centre.env, "--role", "analyst")
        admin = cli_token(centre.env, "--role", "admin")
        proc = _sensor(
            "--watch", str(watch), "--config", str(cfg), "--server", centre.url,
            "--token-file", str(sensor_token), "--observer", "edge-w",
            "--spool-dir", str(tmp_path / "spool"),
        )  # fmt: skip
        try:
            # Every capture carries both markers; only the rule in force may see one.
            both = [("a.bin", b"VIGIA-MARKER-ONE"), ("b.bin", b"VIGIA-MARKER-TWO")]
            packets = smtp_pcap(watch / "cap-1.pcap", both, first_client=1)
            packets += smtp_pcap(watch / "cap-2.pcap", both, first_client=11)
            _wait(lambda: len(_yara_alerts(centre.url, analyst)) == 1)  # cap-1, rule ONE

            (centre.yara / "mark.yar").write_text(MARK_RULE % "TWO")
            r = httpx.post(
                centre.url + "/api/v1/rules/reload", headers={"Authorization": f"Bearer {admin}"}
            )
            assert r.status_code == 200, r.text
            _wait(lambda: _counters(centre.url, analyst).get("yara_packs_fetched") == 2)
            smtp_pcap(watch / "cap-3.pcap", both, first_client=21)  # cap-2 is read now
            _wait(lambda: len(_yara_alerts(centre.url, analyst)) == 2)
        finally:
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=60)
        alerts = _yara_alerts(centre.url, analyst)
        final = _counters(centre.url, analyst)
    seen = sorted((a["source"]["ip"], a["file"]["name"] if "file" in a else "") for a in alerts)
    ips = sorted(a["source"]["ip"] for a in alerts)
    assert ips == ["10.9.1.1", "10.9.1.12"], seen  # ONE on cap-1, TWO on cap-2
    assert final["packets"] == packets, err  # cap-1 and cap-2, every packet
    assert final["yara_packs_refused"] == 0 and final["yara_errors"] == 0


def _counters(url: str, analyst: str) -> dict[str, int]:
    fleet = httpx.get(url + "/api/v1/sensors", headers={"Authorization": f"Bearer {analyst}"})
    rows = fleet.json()
    return dict(rows[0]["counters"]) if rows else {}


def _wait(done: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_repeated_contents_reuse_their_verdict_until_the_pack_changes() -> None:
    from sensors.flow import Content

    def content(data: bytes, name: str) -> Content:
        obs = Observation(1.0, "s", "10.0.0.1", "10.0.0.2", 1, 2, "tcp", "1:x", "http")
        obs.add("file.name", name)
        obs.add("file.hash.sha256", hashlib.sha256(data).hexdigest())
        return Content(obs, data, "http.response.body")

    hits: list[Observation] = []
    scanner = YaraScanner(hits.append, remember=2)
    first = compile_shipped(_shipped(PACKS))
    scanner.swap(first)
    for _ in range(3):
        scanner.scan(content(EICAR, "a.com"))
    scanner.scan(content(EICAR, "b.com"))  # another name: rules may read `filename`
    assert (scanner.counters.scans, scanner.counters.repeats, len(hits)) == (2, 2, 4)
    for data in (b"one", b"two", b"three"):  # bounded: the oldest verdicts go
        scanner.scan(content(data, "x"))
    scanner.scan(content(EICAR, "a.com"))
    assert scanner.counters.scans == 6
    scanner.swap(compile_shipped(_shipped(PACKS)))  # a new pack judges anew
    scanner.scan(content(EICAR, "a.com"))
    assert scanner.counters.scans == 7 and len(hits) == 6


def test_the_sensor_keeps_its_pack_when_the_centre_serves_one_it_cannot_compile(
    tmp_path: Path,
) -> None:
    from tests.centre import ServerThread

    good = _shipped(PACKS)
    serving: dict[str, Any] = {"doc": good}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:  # a pack server
        body = orjson.dumps(serving["doc"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    shipped: list[Observation] = []
    with ServerThread(app, free_port()) as server:
        rules = RulePack([server.url], "t", tmp_path, YaraScanner(shipped.append))
        assert rules.check() and rules.status.fetched == 1
        held = rules.scanner.pack
        from sensors.yarascan import sources_digest

        bad_sources = {"bad": 'rule y { strings: $a = "x" condition: $b }'}
        serving["doc"] = {**good, "sources": bad_sources, "sha256": sources_digest(bad_sources)}
        assert not rules.check()
        assert rules.scanner.pack is held and rules.status.refused == 1
        assert "does not compile here" in rules.status.error
        rules.close()
    # What was kept on disk is the last good pack, which a restart loads.
    again = RulePack(["http://127.0.0.1:9"], "t", tmp_path, YaraScanner(shipped.append))
    assert again.load_saved() and again.scanner.pack is not None
    assert again.scanner.pack.sha256 == good["sha256"]
    again.close()
