"""`vigia scan` keeps a large compiled index: the same files scanned again are not read.

In process (typer's runner) with the size from which an index is kept lowered to
one indicator; the cache folder is the test session's (conftest: VIGIA_CACHE_DIR).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from correlator import scanindex, snapshot
from tests.test_scan import ADDR, HOST, URL, misp_event, write_formats
from vigia.cli import app


@pytest.fixture
def wikipedia() -> Path:
    from tests.conftest import corpus

    return corpus("zeek-traces", "dns-http", "opt.basic", "pcap", "wikipedia.pcap")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("VIGIA_CACHE_DIR", str(folder))
    monkeypatch.setattr(scanindex, "KEEP_FROM", 1)
    return folder


def scan(*args: str | Path) -> tuple[list[dict[str, Any]], str]:
    r = CliRunner().invoke(app, ["scan", *map(str, args)])
    assert r.exit_code == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()], r.stderr


def _unread(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_read(*_: object, **__: object) -> object:
        raise AssertionError("the indicator file was read")

    monkeypatch.setattr("rules.sources.stream_indicator_file", no_read)


def test_the_same_files_scanned_again_use_the_kept_index(
    tmp_path: Path, wikipedia: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv = write_formats(tmp_path)["csv"]
    first, said = scan(wikipedia, "-i", csv)
    assert first and "kept from an earlier scan" not in said
    assert len(list(cache.glob("scan-index-*.snapshot"))) == 1
    with monkeypatch.context() as m:
        _unread(m)
        again, said_again = scan(wikipedia, "-i", csv)
    assert again == first  # the same alerts, ids and all
    assert f"{csv} (csv): 3 loaded (compiled index kept from an earlier scan)" in said_again
    # One byte more in the file: another index, built from the file and kept beside.
    csv.write_text(csv.read_text() + f"domain,{HOST}\n")
    changed, said = scan(wikipedia, "-i", csv)
    assert "4 loaded" in said and "kept from" not in said
    assert len(list(cache.glob("scan-index-*.snapshot"))) == 2
    assert {a["event"]["id"] for a in first} <= {a["event"]["id"] for a in changed}


@pytest.mark.parametrize("damage", ["flipped byte", "cut short", "older format"])
def test_a_damaged_or_older_kept_index_is_rebuilt_from_the_files(
    tmp_path: Path, wikipedia: Path, cache: Path, damage: str
) -> None:
    csv = write_formats(tmp_path)["csv"]
    first, _ = scan(wikipedia, "-i", csv)
    [kept] = cache.glob("scan-index-*.snapshot")
    data = bytearray(kept.read_bytes())
    if damage == "flipped byte":
        data[len(snapshot.MAGIC) + 30] ^= 0x01
    elif damage == "cut short":
        data = data[: len(data) // 2]
    else:
        now = f'"format": {snapshot.FORMAT}'.encode()
        data = bytearray(data.replace(now, b'"format": 2'))
    kept.write_bytes(bytes(data))
    again, said = scan(wikipedia, "-i", csv)
    assert again == first and "kept from" not in said
    assert snapshot.load(kept, kept.stem.removeprefix("scan-index-")) is not None  # again


def test_what_a_snapshot_cannot_hold_is_not_kept(
    tmp_path: Path, wikipedia: Path, cache: Path
) -> None:
    """A MISP event's YARA rules and Zeek's whitelisted values are read from the file
    each time; a folder (a MISP feed) has no one digest."""
    rule = 'rule r { strings: $a = "zzzz-not-here" condition: $a }'
    doc = misp_event([("hostname", HOST)])
    doc["Event"]["Attribute"].append(
        {"type": "yara", "value": rule, "to_ids": True, "category": "Payload delivery"}
    )
    event = tmp_path / "event.json"
    event.write_text(json.dumps(doc))
    zeek = tmp_path / "intel.dat"
    zeek.write_text(
        "#fields\tindicator\tindicator_type\tmeta.source\tmeta.whitelist\n"
        f"{ADDR}\tIntel::ADDR\ttest\tF\n{HOST}\tIntel::DOMAIN\ttest\tT\n"
    )
    (tmp_path / "formats").mkdir()
    formats = write_formats(tmp_path / "formats")
    for path in (event, zeek, formats["misp-feed"]):
        _, said = scan(wikipedia, "-i", path)
        assert "1 loaded" in said or "2 loaded" in said or "3 loaded" in said
    assert not cache.exists() or not list(cache.glob("scan-index-*.snapshot"))
    scan(wikipedia, "-i", formats["csv"])  # and this one is
    assert len(list(cache.glob("scan-index-*.snapshot"))) == 1


def test_only_the_newest_are_kept(tmp_path: Path, wikipedia: Path, cache: Path) -> None:
    made: list[Path] = []
    for n in range(scanindex.KEPT + 2):
        csv = tmp_path / f"iocs{n}.csv"
        csv.write_text(f"type,value\nurl,{URL}\nip-dst,10.0.0.{n}\n")
        scan(wikipedia, "-i", csv)
        [new] = set(cache.glob("scan-index-*.snapshot")) - set(made)
        os.utime(new, (n + 1e9, n + 1e9))  # an order the file system's clock cannot blur
        made.append(new)
    assert sorted(cache.glob("scan-index-*.snapshot")) == sorted(made[-scanindex.KEPT :])


def test_other_code_or_lists_name_another_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv = write_formats(tmp_path)["csv"]
    name = scanindex.name_of([csv], None)
    assert name is not None and name == scanindex.name_of([csv], None)
    assert scanindex.name_of([csv], "pymispwarninglists 1") != name
    assert scanindex.name_of([tmp_path], None) is None  # a folder: not kept
    marks = scanindex._code()
    monkeypatch.setattr(scanindex, "_code", lambda: [*marks[:-1], (marks[-1][0], 1, 2)])
    assert scanindex.name_of([csv], None) != name  # a loader's source changed
