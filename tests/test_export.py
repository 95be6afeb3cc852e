"""Exports for other sensors: Zeek intel and Suricata datasets, read back and checked."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

from rules.export import suricata_datasets, zeek_intel
from rules.indicator import Indicator
from rules.sources import load_indicator_file

INDICATORS = [
    Indicator("hostname", "c2.bad.example", "feed-a", comment="tab\there"),
    Indicator("domain", "bad.example", "feed-a"),
    Indicator("ip-dst", "203.0.113.9", "feed-b"),
    Indicator("ip-dst", "198.51.100.0/24", "feed-b"),
    Indicator("url", "bad.example/x.php?id=1", "feed-a"),
    Indicator("sha256", "ab" * 32, "feed-c"),
    Indicator("md5", "cd" * 16, "feed-c"),
    Indicator("ja3-fingerprint-md5", "ef" * 16, "feed-c"),
    Indicator("hostname", "not-for-ids.example", "feed-a", to_ids=False),
]


def test_zeek_intel_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "vigia.intel"
    summary = zeek_intel(INDICATORS, out)
    assert summary["skipped: not to_ids"] == 1
    assert summary["skipped: no Zeek type for ja3-fingerprint-md5"] == 1
    back = load_indicator_file(out)
    assert back.format == "zeek-intel"
    assert sorted((i.type, i.value) for i in back.indicators) == sorted(
        [
            ("hostname", "c2.bad.example"),
            ("hostname", "bad.example"),  # Zeek's DOMAIN is exact
            ("ip-dst", "203.0.113.9"),
            ("ip-dst", "198.51.100.0/24"),
            ("url", "bad.example/x.php?id=1"),
            ("sha256", "ab" * 32),
            ("md5", "cd" * 16),
        ]
    )
    records = [x for x in out.read_text().splitlines() if not x.startswith("#")]
    assert all(len(x.split("\t")) == 5 for x in records)  # the tab in a comment was cleaned
    assert "tab here" in out.read_text()


def test_suricata_datasets(tmp_path: Path) -> None:
    summary = suricata_datasets(INDICATORS, tmp_path)
    names = [
        base64.b64decode(x).decode() for x in (tmp_path / "vigia-names.lst").read_text().split()
    ]
    assert sorted(names) == ["bad.example", "c2.bad.example"]
    assert (tmp_path / "vigia-ips.lst").read_text() == "203.0.113.9\n"
    assert summary["skipped: networks (ip datasets hold addresses)"] == 1
    assert (tmp_path / "vigia-sha256.lst").read_text().strip() == "ab" * 32
    assert (tmp_path / "vigia-ja3.lst").read_text().strip() == "ef" * 16
    rules = (tmp_path / "vigia.rules").read_text().splitlines()
    for r in rules:  # every list a rule loads exists
        for token in r.split():
            if token.endswith(".lst;") or token.endswith(".lst;)"):
                assert (tmp_path / token.split(":")[-1].rstrip(";)").split(",")[-1]).exists()
    assert len({r.split("sid:")[1].split(";")[0] for r in rules}) == len(rules)


def test_cli_export(tmp_path: Path, db_url: str) -> None:
    env = {**os.environ, "VIGIA_DATA_DIR": str(tmp_path / "d"), "VIGIA_DATABASE_URL": db_url}
    iocs = tmp_path / "i.csv"
    iocs.write_text("type,value\nhostname,x.example\nip-dst,192.0.2.1\n")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "vigia", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    assert run("indicators", "import", str(iocs)).returncode == 0
    r = run("indicators", "export", "--format", "zeek", str(tmp_path / "out.intel"))
    assert r.returncode == 0 and "Intel::ADDR: 1" in r.stderr
    assert len(load_indicator_file(tmp_path / "out.intel").indicators) == 2
    bad = run("indicators", "export", "--format", "snort", str(tmp_path / "x"))
    assert bad.returncode == 2 and "unknown format" in bad.stderr
