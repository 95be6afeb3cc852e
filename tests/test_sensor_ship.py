"""The sensor's way to the centre: spool, shipping, restarts, SIGTERM, heartbeat, metrics."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from core.tokens import Role
from correlator.rows import BatchRow, ObservationRow
from correlator.store import IndicatorStore
from rules.indicator import Indicator
from sensors.observation import Observation
from sensors.prefilter import PreFilter
from sensors.ship import Shipper
from sensors.spool import Spool, SpoolFull
from tests.centre import Centre, free_port
from tests.conftest import bearer, corpus, make_token
from vigia.wiring import Services


def _obs(i: int, observer: str = "sensor-1") -> Observation:
    o = Observation(
        timestamp=1_700_000_000.0 + i,
        observer=observer,
        src_ip="10.1.0.1",
        dst_ip="192.0.2.1",
        src_port=1000 + i,
        dst_port=53,
        transport="udp",
        community_id=f"1:{i}",
        protocol="dns",
    )
    o.add("dns.question.name", f"host{i}.example")
    return o


def _stored(services: Services) -> tuple[int, int]:
    with services.db.transaction(write=False) as s:
        obs = s.execute(select(func.count(ObservationRow.id))).scalar_one()
        batches = s.execute(select(func.count(BatchRow.batch_id))).scalar_one()
    return obs, batches


# -- the spool ------------------------------------------------------------


def test_spool_is_fifo_and_survives_restart(tmp_path: Path) -> None:
    sp = Spool(tmp_path, max_bytes=10_000)
    for i in range(3):
        sp.put(f"b{i}", b"x" * 100)
    (tmp_path / "000000000099-half.tmp").write_bytes(b"cut")  # a crash mid-write
    again = Spool(tmp_path, max_bytes=10_000)
    assert len(again) == 3 and again.size_bytes == 300
    assert not list(tmp_path.glob("*.tmp"))
    first = again.peek()
    assert first is not None and first.batch_id == "b0"
    again.ack(first)
    again.put("b3", b"y")
    order = []
    while (b := again.peek()) is not None:
        order.append(b.batch_id)
        again.ack(b)
    assert order == ["b1", "b2", "b3"]


def test_spool_full_policies_count_what_they_drop(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "a", max_bytes=250, policy="drop_oldest")
    for i in range(5):
        sp.put(f"b{i}", b"x" * 100)
    assert sp.dropped == 3 and len(sp) == 2 and sp.peek().batch_id == "b3"  # type: ignore[union-attr]
    stop = Spool(tmp_path / "b", max_bytes=250, policy="stop")
    stop.put("b0", b"x" * 100)
    stop.put("b1", b"x" * 100)
    with pytest.raises(SpoolFull):
        stop.put("b2", b"x" * 100)
    assert len(stop) == 2


# -- shipping to a real centre ---------------------------------------------


def test_centre_down_then_up_every_observation_exactly_once(
    tmp_path: Path, services: Services
) -> None:
    token = make_token(services, Role.SENSOR, name="sensor-1")
    port = free_port()
    shipper = Shipper(
        f"http://127.0.0.1:{port}", token, Spool(tmp_path / "spool"), "sensor-1", batch_size=40
    )
    for i in range(100):  # the centre is not there: everything spools
        shipper.add(_obs(i))
        shipper.drain(force=True)
    shipper.flush()
    assert shipper.drain(force=True) == 0
    assert len(shipper.spool) == 3 and shipper.counters.send_failures > 0
    # A restart of the sensor in between: the spool is read back from disk.
    shipper = Shipper(f"http://127.0.0.1:{port}", token, Spool(tmp_path / "spool"), "sensor-1")
    with Centre(services, port):
        # A lost reply: the oldest batch reached the centre, the sensor never heard.
        lost = shipper.spool.peek()
        assert lost is not None
        r = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/observations",
            content=lost.payload,
            headers={
                **bearer(token),
                "Content-Encoding": "gzip",
                "Content-Type": "application/json",
            },
        )
        assert r.status_code == 200 and r.json()["observations"] == 40
        assert shipper.drain(force=True) == 3  # sends it again: stored once
        assert shipper.counters.observations_shipped == 100
    assert len(shipper.spool) == 0
    assert _stored(services) == (100, 3)


def test_refused_batch_is_set_aside_not_retried(tmp_path: Path, services: Services) -> None:
    token = make_token(services, Role.SENSOR, name="sensor-1")
    spool = Spool(tmp_path / "spool")
    spool.put(
        "sensor-1-bad0001",
        gzip.compress(b'{"batch_id": "sensor-1-bad0001", "observations": [{"@timestamp": "x"}]}'),
    )
    port = free_port()
    shipper = Shipper(f"http://127.0.0.1:{port}", token, spool, "sensor-1")
    shipper.add(_obs(1))
    shipper.flush()
    with Centre(services, port):
        assert shipper.drain(force=True) == 2
    assert shipper.counters.refused == 1 and len(spool) == 0
    assert len(list((tmp_path / "spool").glob("*.refused"))) == 1
    assert _stored(services) == (1, 1)


# -- `vigia sensor run` as an operator runs it ------------------------------


def _sensor(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "vigia", "sensor", "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_sensor_run_pcap_reaches_alerts_and_heartbeat(tmp_path: Path, services: Services) -> None:
    wikipedia = corpus("zeek-traces", "dns-http", "opt.basic", "pcap", "wikipedia.pcap")
    token_file = tmp_path / "token"
    token_file.write_text(make_token(services, Role.SENSOR, name="edge-1") + "\n")
    analyst = make_token(services, Role.ANALYST)
    with services.db.transaction() as s:
        IndicatorStore.save(s, [Indicator("hostname", "upload.wikimedia.org", "t")])
    port = free_port()
    with Centre(services, port) as centre:
        proc = _sensor(
            tmp_path,
            "--pcap",
            str(wikipedia),
            "--server",
            centre.url,
            "--token-file",
            str(token_file),
            "--observer",
            "edge-1",
            "--spool-dir",
            str(tmp_path / "spool"),
        )
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        # 81 observations, four of them repeats within their flow (LLMNR/mDNS retries)
        assert "77 observations, 77 shipped, 0 batches spooled" in err
        alerts = httpx.get(f"{centre.url}/api/v1/alerts", headers=bearer(analyst)).json()
        fields = sorted(a["threat"]["enrichments"][0]["matched"]["field"] for a in alerts["alerts"])
        assert fields == ["dns.question.name", "url.domain"]
        fleet = httpx.get(f"{centre.url}/api/v1/sensors", headers=bearer(analyst)).json()
    assert [f["name"] for f in fleet] == ["edge-1"]
    assert fleet[0]["counters"]["packets"] == 136
    assert fleet[0]["counters"]["observations_shipped"] == 77
    assert fleet[0]["counters"]["filtered_duplicate_in_flow"] == 4


def test_sensor_run_bad_config_is_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "s.toml"
    cfg.write_text('[sensor]\nserver = "ftp://x"\n')
    p = _sensor(tmp_path, "--config", str(cfg), "--pcap", "x.pcap")
    _out, err = p.communicate(timeout=30)
    assert p.returncode == 2 and err.strip() == (
        "vigia: server: 'ftp://x' must be an http:// or https:// URL"
    )
    p = _sensor(
        tmp_path,
        "--pcap",
        "x.pcap",
        "--server",
        "http://127.0.0.1:1",
        "--token-file",
        str(tmp_path / "missing"),
    )
    _out, err = p.communicate(timeout=30)
    assert p.returncode == 2 and "token_file" in err and "Traceback" not in err


def _traces() -> list[Path]:
    """Four real traces of different protocols, as rotated capture files would come."""
    return [
        corpus("zeek-traces", "dns-http", "opt.basic", "pcap", "wikipedia.pcap"),
        corpus("zeek-traces", "dns-http", "core.tcp.reassembly-known-ports", "pcap", "get.pcap"),
        corpus(
            "zeek-traces",
            "tls",
            "scripts.base.protocols.ssl.basic",
            "pcap",
            "tls-conn-with-extensions.pcap",
        ),
        corpus("zeek-traces", "smtp", "scripts.base.protocols.smtp.basic", "pcap", "smtp.pcap"),
    ]


def _count(paths: list[Path]) -> tuple[int, int]:
    """Packets and observations the sensor engine makes of these files, in one run."""
    from sensors.engine import Sensor, SensorConfig
    from sensors.pcapfile import read_packets

    seen: list[Observation] = []
    engine = Sensor(SensorConfig(), seen.append, prefilter=PreFilter())
    for p in paths:
        for item in read_packets(p):
            engine.packet(*item)
    engine.finish()
    return engine.counters.packets, len(seen)


def test_sigterm_spools_everything_then_a_restart_delivers_it_once(
    tmp_path: Path, services: Services
) -> None:
    traces = _traces()[:3]
    watch = tmp_path / "captures"  # as `tcpdump -G` leaves them: named in time order
    watch.mkdir()
    for n, trace in enumerate(traces, start=1):
        (watch / f"trace-{n:04d}.pcap").write_bytes(trace.read_bytes())
    packets_12, obs_12 = _count(traces[:2])
    _packets_3, obs_3 = _count(traces[2:])
    token_file = tmp_path / "token"
    token_file.write_text(make_token(services, Role.SENSOR, name="edge-2"))
    port = free_port()  # nothing listens yet: the centre is down
    common = [
        "--server",
        f"http://127.0.0.1:{port}",
        "--token-file",
        str(token_file),
        "--observer",
        "edge-2",
        "--spool-dir",
        str(tmp_path / "spool"),
        "--metrics-port",
        str(free_port()),
    ]
    proc = _sensor(tmp_path, "--watch", str(watch), *common)
    state = tmp_path / "spool" / "watch.state"
    deadline = time.monotonic() + 30
    while not (state.exists() and state.read_text().strip() == "trace-0002.pcap"):
        assert time.monotonic() < deadline, "the two settled captures were not processed"
        time.sleep(0.1)
    metrics_port = common[-1]
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
    assert f'vigia_sensor_packets_total{{observer="edge-2"}} {packets_12}.0' in text
    assert "vigia_sensor_spool_bytes" in text
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    # The newest capture waits (tcpdump may still be writing it); the rest is spooled.
    assert f"{obs_12} observations, 0 shipped" in err
    spooled = 0
    for f in sorted((tmp_path / "spool" / "batches").iterdir()):
        spooled += len(json.loads(gzip.decompress(f.read_bytes()))["observations"])
    assert spooled == obs_12

    with Centre(services, port):
        common[-1] = str(free_port())
        proc = _sensor(tmp_path, "--watch", str(watch), "--drain", *common)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"{obs_3} observations, {obs_12 + obs_3} shipped, 0 batches spooled" in err
    assert _stored(services)[0] == obs_12 + obs_3  # each observation exactly once


def test_prefilter_reasons() -> None:
    pf = PreFilter(networks=("10.9.0.0/16",), domains=("trusted.example",), sample_one_in=1)
    assert pf.skip_flow("10.9.1.1", "192.0.2.1", "1:x") == "allowlisted_network"
    assert pf.skip_flow("10.8.1.1", "192.0.2.1", "1:x") is None
    o = _obs(1)
    o.values = {"dns.question.name": ["www.trusted.example"]}
    assert pf.drop_reason(o) == "allowlisted_domain"
    o.values = {"dns.question.name": ["evil.example"]}
    assert pf.drop_reason(o) is None
    assert pf.drop_reason(o) == "duplicate_in_flow"
    sampled = PreFilter(sample_one_in=4)
    kept = sum(sampled.skip_flow("1.1.1.1", "2.2.2.2", f"1:{i}") is None for i in range(4000))
    assert 800 < kept < 1200  # about one in four, decided per flow


def test_server_stopped_mid_stream_then_restarted_counts_equal(
    tmp_path: Path, services: Services
) -> None:
    traces = _traces()
    watch = tmp_path / "captures"
    watch.mkdir()
    token_file = tmp_path / "token"
    token_file.write_text(make_token(services, Role.SENSOR, name="edge-3"))
    port = free_port()
    state = tmp_path / "spool" / "watch.state"

    def drop(n: int) -> None:  # a rotation: file n appears, file n-1 is now settled
        (watch / f"trace-{n:04d}.pcap").write_bytes(traces[n - 1].read_bytes())

    def settled(name: str) -> None:
        deadline = time.monotonic() + 30
        while not (state.exists() and state.read_text().strip() == name):
            assert time.monotonic() < deadline, f"{name} was not processed"
            time.sleep(0.1)

    centre = Centre(services, port).__enter__()
    proc = _sensor(
        tmp_path,
        "--watch",
        str(watch),
        "--server",
        centre.url,
        "--token-file",
        str(token_file),
        "--observer",
        "edge-3",
        "--spool-dir",
        str(tmp_path / "spool"),
    )
    try:
        drop(1)
        drop(2)
        settled("trace-0001.pcap")
        deadline = time.monotonic() + 30
        while _stored(services)[0] == 0:  # the first file reached the centre
            assert time.monotonic() < deadline
            time.sleep(0.1)
        centre.__exit__(None, None, None)  # the centre goes away mid-stream
        drop(3)
        settled("trace-0002.pcap")
        spool = tmp_path / "spool" / "batches"
        deadline = time.monotonic() + 30
        while not list(spool.iterdir()):  # a flush while the centre is away: batches spool
            assert time.monotonic() < deadline, "nothing spooled while the centre was away"
            time.sleep(0.1)
        centre = Centre(services, port).__enter__()  # and comes back
        drop(4)
        settled("trace-0003.pcap")
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        centre.__exit__(None, None, None)
    assert proc.returncode == 0, err
    sent = int(err.split(" observations, ")[0].rsplit(" ", 1)[1])
    shipped = int(err.split(" shipped")[0].rsplit(" ", 1)[1])
    assert "0 batches spooled" in err
    assert sent == shipped == _stored(services)[0] > 0  # counts in equal counts stored


def test_with_the_collector_off_the_sensor_collects_on_its_clock(tmp_path: Path) -> None:
    """`vigia sensor run` turns automatic collection off (quiet_gc); the service's tick
    then runs a full pass every GC_INTERVAL_S, so cycles made elsewhere still go."""
    import gc
    import weakref

    from sensors.config import SensorSettings
    from sensors.runner import GC_INTERVAL_S, SensorService

    shipper = Shipper(
        f"http://127.0.0.1:{free_port()}", "t", Spool(tmp_path / "spool"), "s1", timeout_s=0.5
    )
    service = SensorService(SensorSettings(heartbeat_s=3600, flush_s=3600), shipper)

    class Node:
        me: object = None

    was_on = gc.isenabled()
    gc.disable()
    try:
        node = Node()
        node.me = node  # a cycle: only the collector frees it
        alive = weakref.ref(node)
        del node
        service.tick()
        assert alive() is not None  # within the interval: no pass
        service._last_gc -= GC_INTERVAL_S
        service.tick()
        assert alive() is None
    finally:
        if was_on:
            gc.enable()
        shipper.close()
