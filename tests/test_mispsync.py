"""MISP sync through pymisp against a MISP REST API on loopback, built from real events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from rules.indicator import supported_type
from tests.centre import free_port
from tests.conftest import corpus
from tests.mispserver import KEY, MispOnLoopback


def _event(*parts: str, published: bool, timestamp: int) -> dict[str, Any]:
    doc = json.loads(corpus("misp", "pymisp-tests", *parts).read_text())
    event = doc.get("Event", doc)
    event["published"], event["timestamp"] = published, str(timestamp)
    return {"Event": event}


def _expected(doc: dict[str, Any]) -> set[tuple[str, str]]:
    event = doc["Event"]
    attrs = list(event.get("Attribute", []))
    for obj in event.get("Object", []):
        attrs.extend(obj.get("Attribute", []))
    return {
        (a["type"], a["value"])
        for a in attrs
        if a.get("to_ids") and supported_type(a["type"]) and not a.get("deleted")
    }


def _sync(tmp_path: Path, url: str, key_file: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VIGIA_DATA_DIR": str(tmp_path / "d"), "VIGIA_WARNINGLISTS": "false"}
    env.pop("VIGIA_DATABASE_URL", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "vigia",
            "indicators",
            "sync",
            "--misp-url",
            url,
            "--misp-key-file",
            str(key_file),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_first_and_incremental_sync(tmp_path: Path) -> None:
    osint = _event(
        "57c4445b-c548-4654-af0b-4be3950d210f.json", published=True, timestamp=1_700_000_000
    )
    draft = _event("misp_event.json", published=False, timestamp=1_700_000_100)
    events = [osint, draft]
    key_file = tmp_path / "misp.key"
    key_file.write_text(KEY + "\n")
    with MispOnLoopback(events, free_port()) as misp:
        first = _sync(tmp_path, misp.url, key_file)
        assert first.returncode == 0, first.stderr
        n = len(_expected(osint))
        assert n > 0
        assert f"({n} new" in first.stderr and "since the beginning" in first.stderr
        assert "went wrong" not in first.stderr
        assert misp.requests[-1]["published"] in (1, True)
        assert misp.requests[-1].get("timestamp") is None

        later = _event(
            "mispevent_testfiles", "existing_event.json", published=True, timestamp=1_700_000_500
        )
        events.append(later)
        second = _sync(tmp_path, misp.url, key_file)
        assert second.returncode == 0, second.stderr
        assert int(misp.requests[-1]["timestamp"]) == 1_700_000_001  # only what changed since
        m = len(_expected(later))
        assert f"({m} new" in second.stderr and "since 1700000000" in second.stderr

        bad_key = tmp_path / "bad.key"
        bad_key.write_text("b" * 40)
        refused = _sync(tmp_path, misp.url, bad_key)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().count("\n") == 0 and misp.url in refused.stderr
    state = json.loads((tmp_path / "d" / "misp-sync.json").read_text())
    assert state == {misp.url: 1_700_000_500}  # the refused run changed nothing
