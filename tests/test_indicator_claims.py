"""Indicator sources docs/status.md lists that no other test loaded."""

from __future__ import annotations

from pathlib import Path

from rules.sources import load_indicator_file


def test_a_misp_feed_hashes_csv_loads_its_hashes_by_their_length(tmp_path: Path) -> None:
    """A MISP feed's `hashes.csv` (hash, event uuid; no header) reads as a free-text feed."""
    event = "5e1a6f3c-1d2b-4c5a-9e8f-0a1b2c3d4e5f"
    md5, sha1, sha256 = "d41d8cd98f00b204e9800998ecf8427f", "ab" * 20, "cd" * 32
    path = tmp_path / "hashes.csv"
    path.write_text(f"{md5},{event}\n{sha1},{event}\n{sha256},{event}\n")
    result = load_indicator_file(path, strict=False)
    assert [(i.type, i.value) for i in result.indicators] == [
        ("md5", md5),
        ("sha1", sha1),
        ("sha256", sha256),
    ]
    assert not result.rejected
