"""Configuration as the README's Configuration section states it."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import load_settings


def test_feeds_from_the_environment_as_a_json_list_or_from_toml_as_an_array(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VIGIA_CONFIG", raising=False)
    monkeypatch.setenv("VIGIA_FEEDS", '["/srv/feeds/a.csv", "https://feeds.example/b.txt"]')
    assert load_settings().feeds == ["/srv/feeds/a.csv", "https://feeds.example/b.txt"]
    monkeypatch.delenv("VIGIA_FEEDS")
    cfg = tmp_path / "vigia.toml"
    cfg.write_text('[vigia]\nfeeds = ["/srv/feeds/c.csv"]\nfeed_minutes = 15\n')
    monkeypatch.setenv("VIGIA_CONFIG", str(cfg))
    settings = load_settings()
    assert settings.feeds == ["/srv/feeds/c.csv"] and settings.feed_minutes == 15


def test_the_data_lives_in_vigia_data_unless_told_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("VIGIA_CONFIG", "VIGIA_DATA_DIR", "VIGIA_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.data_dir == Path("vigia-data")
    assert settings.effective_database_url.endswith("vigia-data/vigia.db")
    monkeypatch.setenv("VIGIA_DATA_DIR", str(tmp_path))
    assert load_settings().data_dir == tmp_path
