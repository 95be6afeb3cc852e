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
    monkeypatch.setattr(compiled, "_ROOT", copy)
    assert compiled.stale() == []
    with (copy / "sensors" / "extract" / "tls.py").open("a") as fh:
        fh.write("# edited after the build\n")
    assert compiled.stale() == ["sensors.extract.tls"]
    (copy / compiled.BUILD_RECORD).unlink()  # built by something that kept no record
    assert compiled.stale() == list(compiled.MODULES)
