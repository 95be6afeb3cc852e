"""Hostile input never stops the sensor: random and mutated frames are counted, not raised."""

from __future__ import annotations

import zlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensors.engine import Sensor, SensorConfig
from sensors.extract import http
from sensors.pcapfile import read_packets
from tests.conftest import CORPORA

_SEEDS: list[bytes] = []


def _seeds() -> list[bytes]:
    if not _SEEDS:
        for pcap in sorted(CORPORA.glob("zeek-traces/*/*/pcap/*.pcap"))[:12]:
            _SEEDS.extend(frame for _ts, _lt, frame in read_packets(pcap))
        if not _SEEDS:
            _SEEDS.append(b"\x00" * 60)
    return _SEEDS


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_frames_never_raise(data: st.DataObject) -> None:
    seeds = _seeds()
    sensor = Sensor(SensorConfig(stream_depth=4096, max_body=4096), lambda o: None, lambda c: None)
    for _ in range(data.draw(st.integers(1, 8))):
        frame = bytearray(seeds[data.draw(st.integers(0, len(seeds) - 1))])
        for _ in range(data.draw(st.integers(0, 6))):
            if not frame:
                break
            pos = data.draw(st.integers(0, len(frame) - 1))
            frame[pos] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(0, len(frame)))
        sensor.packet(
            0.0, data.draw(st.sampled_from([1, 1, 1, 101, 113, 276, 0])), bytes(frame[:cut])
        )
    sensor.finish()
    c = sensor.counters
    assert c.decoded + c.not_ip + sum(c.malformed.values()) + c.fragments == c.packets


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_as_frames(blob: bytes) -> None:
    sensor = Sensor(SensorConfig(), lambda o: None)
    sensor.packet(0.0, 1, blob)
    sensor.packet(0.0, 101, blob)
    sensor.finish()


def test_gzip_bomb_stops_at_the_body_cap() -> None:
    bomb = zlib.compress(b"\x00" * (50 * 1024 * 1024), 9)  # 50 MiB of zeros in ~50 KiB
    parser = http.HttpParser(from_client=False, max_body=1024 * 1024)
    parser.pending_methods.append(("GET", "/bomb"))
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: "
        + str(len(bomb)).encode()
        + b"\r\n\r\n"
    )
    out = parser.feed(head + bomb)
    bodies = [x for x in out if isinstance(x, http.Body)]
    assert len(bodies) == 1 and len(bodies[0].data) == 1024 * 1024
