"""The sensor's per-packet path runs compiled (setup.py), and compiled it does what the
plain Python does: the same observations, contents and counters, on the corpora
traces and on mutated frames (the error paths are where a compiled module's
stricter types would differ).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from sensors import compiled
from tests.conftest import CORPORA

ROOT = Path(__file__).resolve().parent.parent
PURE = os.environ.get("VIGIA_PURE_PYTHON") == "1"

# Run in a child process: observations, contents and counters of each capture, as JSON.
RUN_ENGINE = """
import hashlib, json, sys
import sensors.engine
from sensors.engine import Sensor, SensorConfig
from sensors.pcapfile import CaptureError, read_batches

out = {"engine": sensors.engine.__file__, "files": {}}
for path in sys.argv[1:]:
    obs, contents = [], []
    sensor = Sensor(
        SensorConfig(stream_depth=64 * 1024, max_body=64 * 1024),
        lambda o: obs.append(o.to_ecs()),
        lambda c: contents.append([c.source, hashlib.sha256(c.data).hexdigest()]),
    )
    try:
        for batch in read_batches(path):
            sensor.feed(batch)
    except CaptureError as exc:
        obs.append({"capture_error": str(exc)})
    sensor.finish()
    c = sensor.counters
    counters = {}
    for name in ("packets", "bytes", "decoded", "not_ip", "flows", "fragments", "observations",
                 "contents", "flows_evicted", "flows_evicted_memory"):
        counters[name] = getattr(c, name)
    for name in ("malformed", "filtered", "protocol_errors"):
        counters[name] = dict(sorted(getattr(c, name).items()))
    out["files"][path] = {"observations": obs, "contents": contents, "counters": counters}
print(json.dumps(out, sort_keys=True))
"""


def _run(pythonpath: Path, pcaps: list[Path]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    done = subprocess.run(
        [sys.executable, "-c", RUN_ENGINE, *map(str, pcaps)],
        capture_output=True,
        text=True,
        env=env,
        cwd=pythonpath,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def _mutated_pcap(path: Path, seeds: list[Path], count: int = 4000) -> Path:
    """Corpus frames with bytes changed and ends cut, written as one pcap (seeded: repeatable)."""
    from sensors.pcapfile import read_packets

    frames = [frame for pcap in seeds for _ts, _lt, frame in read_packets(pcap)]
    rng = random.Random(20261201)
    with path.open("wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i in range(count):
            frame = bytearray(rng.choice(frames))
            for _ in range(rng.randint(0, 4)):
                frame[rng.randrange(len(frame))] = rng.randrange(256)
            if rng.random() < 0.3:
                frame = frame[: rng.randint(0, len(frame))]
            stamp = (1_700_000_000 + i // 100, i % 100)
            fh.write(struct.pack("<IIII", *stamp, len(frame), len(frame)))
            fh.write(frame)
    return path


@pytest.mark.skipif(PURE, reason="VIGIA_PURE_PYTHON=1: installed without compiling")
def test_the_per_packet_path_is_compiled_and_current() -> None:
    assert [m for m in compiled.MODULES if not compiled.is_compiled(m)] == []
    assert compiled.stale() == [], "rebuild: python setup.py build_ext --inplace"


@pytest.mark.skipif(PURE, reason="VIGIA_PURE_PYTHON=1: nothing compiled to compare")
def test_compiled_and_plain_python_agree(tmp_path: Path) -> None:
    pcaps = sorted(CORPORA.glob("zeek-traces/*/*/pcap/*.pcap"))
    pcaps += sorted(CORPORA.glob("suricata-verify/*/*.pcap"))
    if not pcaps:
        pytest.skip("corpora not available")
    pcaps.append(_mutated_pcap(tmp_path / "mutated.pcap", pcaps[:12]))
    # The same sources without their extensions: Python imports the .py files.
    plain = tmp_path / "plain"
    shutil.copytree(
        ROOT / "sensors", plain / "sensors", ignore=shutil.ignore_patterns("*.so", "__pycache__")
    )
    ours, reference = _run(ROOT, pcaps), _run(plain, pcaps)
    assert ours["engine"].endswith(".so") and reference["engine"].endswith(".py")
    assert ours["files"].keys() == reference["files"].keys()
    for path, got in ours["files"].items():
        assert got == reference["files"][path], path
    mutated = ours["files"][str(pcaps[-1])]["counters"]
    assert mutated["malformed"] and mutated["packets"] == 4000  # the error paths ran
    assert sum(len(f["observations"]) for f in ours["files"].values()) > 500


def test_the_engine_makes_no_reference_cycles() -> None:
    """quiet_gc() collects rarely on the strength of this: the engine's garbage is
    freed by reference counting alone, on every corpus trace."""
    import gc

    from sensors.engine import Sensor, SensorConfig
    from sensors.pcapfile import read_batches
    from sensors.prefilter import PreFilter

    pcaps = sorted(CORPORA.glob("zeek-traces/*/*/pcap/*.pcap"))
    if not pcaps:
        pytest.skip("corpora not available")
    gc.collect()
    gc.disable()
    try:
        for pcap in pcaps:
            sensor = Sensor(SensorConfig(), lambda o: None, lambda c: None, PreFilter())
            for batch in read_batches(pcap):
                sensor.feed(batch)
            sensor.finish()
            assert sensor.counters.observations > 0
        del sensor
        found = gc.collect()
    finally:
        gc.enable()
    assert found == 0


@pytest.mark.skipif(PURE, reason="VIGIA_PURE_PYTHON=1: nothing compiled")
def test_an_edited_source_is_named_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "checkout"
    shutil.copytree(ROOT / "sensors", copy / "sensors", ignore=shutil.ignore_patterns("*.so"))
    for source in compiled.sources():  # the centre's compiled modules too
        (copy / source).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / source, copy / source)
    monkeypatch.setattr(compiled, "_ROOT", copy)
    assert compiled.stale() == []
    with (copy / "sensors" / "extract" / "tls.py").open("a") as fh:
        fh.write("# edited after the build\n")
    assert compiled.stale() == ["sensors.extract.tls"]
    (copy / compiled.BUILD_RECORD).unlink()  # built by something that kept no record
    assert compiled.stale() == list(compiled.MODULES)


@pytest.mark.skipif(PURE, reason="VIGIA_PURE_PYTHON=1: nothing compiled to compare")
def test_compiled_lookups_agree_with_plain_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """correlator.lookups compiled answers as its source run as Python: the hits of
    values of every kind, several indicators on one value, and types a field
    leaves out (ja3 and md5 share a table), in the same order."""
    import importlib.util

    from correlator import index as index_module
    from correlator.index import IndicatorIndex
    from rules.indicator import Indicator, normalise

    assert compiled.is_compiled("correlator.lookups")
    spec = importlib.util.spec_from_file_location("plain_lookups", ROOT / "correlator/lookups.py")
    assert spec is not None and spec.loader is not None
    plain = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plain)
    md5 = "d41d8cd98f00b204e9800998ecf8427e"
    rows = [
        ("domain", "evil.example", "a"),
        ("domain", "evil.example", "b"),
        ("domain", "c2.bad.test", "a"),
        ("hostname", "exact.host.example", "a"),
        ("md5", md5, "a"),
        ("ja3-fingerprint-md5", md5, "b"),
        ("email-src", "Phish@Mail.Example", "a"),
        ("url", "http://evil.example/gate.php", "a"),
        ("url", "https://Evil.Example:8443/x?q=1", "b"),
        ("ip-dst", "198.51.100.7", "a"),
        ("ip-dst", "10.0.0.0/8", "a"),
        ("ip-src", "10.0.0.0/8", "b"),
    ]
    index = IndicatorIndex(Indicator(t, normalise(t, v), p) for t, v, p in rows)
    fields = {
        "dns.question.name": ["evil.example", "A.Evil.Example.", "x.c2.bad.test", "bad.test",
                              "exact.host.example", "sub.exact.host.example", "", ".", "a..b"],
        "file.hash.md5": [md5.upper(), md5, "zz", ""],
        "tls.client.ja3": [md5, "e7d705a3286e19ea42f587b344ee6865"],
        "email.from.address": ["phish@mail.example", "PHISH@MAIL.EXAMPLE", "x@y"],
        "url.original": ["http://evil.example/gate.php", "HTTP://EVIL.EXAMPLE/gate.php",
                         "https://evil.example:8443/x?q=1", "http://a/#b", "nonsense", ""],
        "destination.ip": ["198.51.100.7", "10.1.2.3", "2001:db8::1", "junk"],
    }  # fmt: skip

    def answers() -> dict[str, list]:
        return {f: index.probe_field(f, values) for f, values in fields.items()}

    ours = answers()
    monkeypatch.setattr(index_module, "lookups", plain)
    assert answers() == ours
    assert all(ours.values())  # every field hit something
