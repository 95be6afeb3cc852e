"""MISP events read attribute by attribute (rules.sources.misp): as pymisp reads them,
a bad attribute rejected alone, and the spool a sync keeps its pages in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pymisp import MISPEvent

from rules.indicator import Indicator, normalise, supported_type
from rules.sources import IndicatorFileError, LoadResult
from rules.sources.misp import event_indicators
from rules.sources.spool import Spool
from rules.vocab import indicator_types
from tests.conftest import corpus

EVENT_UUID = "30000000-0000-4000-8000-000000000001"


def _event(attributes: list[Any], objects: list[Any] | None = None) -> dict[str, Any]:
    return {
        "Event": {
            "uuid": EVENT_UUID,
            "info": "attributes as MISP writes them",
            "threat_level_id": "1",
            "Orgc": {"name": "CIRCL"},
            "Tag": [{"name": "tlp:green"}],
            "Attribute": attributes,
            "Object": objects or [],
        }
    }


def test_attributes_are_read_as_misp_documents_them() -> None:
    attrs = [
        {"type": "ip-dst", "value": "192.0.2.1", "to_ids": "1", "uuid": "a1", "first_seen": ""},
        {"type": "domain", "value": "Evil.Example", "uuid": "a2"},  # to_ids unsaid: 1
        {"type": "user-agent", "value": "curl/8", "uuid": "a3"},  # to_ids unsaid: 0
        {"type": "made-up-type", "value": "x", "uuid": "a4"},  # not MISP's: skipped alone
        {"type": "ip-src", "uuid": "a5"},  # no value: rejected alone
        {"type": "md5", "value": "0" * 32, "first_seen": "yesterday", "uuid": "a6"},
        {"type": "sha1", "value": "1" * 40, "deleted": True, "uuid": "a7"},
        {"type": "domain|ip", "value": "c2.example|198.51.100.7", "to_ids": 1, "uuid": "a8"},
        {
            "type": "url",
            "value": "http://c2.example/gate.php",
            "to_ids": True,
            "uuid": "a9",
            "Tag": [{"name": "tlp:red"}],
            "first_seen": "2026-11-30T10:00:00.000000+00:00",
            "comment": "panel",
        },
        {"type": "yara", "value": "rule r { condition: true }", "to_ids": True, "uuid": "y1"},
    ]
    objects = [
        {"name": "file", "Attribute": [{"type": "sha256", "value": "2" * 64, "to_ids": True}]},
        {"name": "gone", "deleted": "1", "Attribute": [{"type": "md5", "value": "3" * 32}]},
        {"name": "odd", "deleted": {"no": "flag"}, "Attribute": [{"type": "md5", "value": "4"}]},
    ]
    result = LoadResult("e.json", "misp-event", strict=False)
    got = event_indicators(_event(attrs, objects), Path("e.json"), result)
    seen = {(i.type, i.value, i.to_ids, i.tlp) for i in got}
    assert seen == {
        ("ip-dst", "192.0.2.1", True, "green"),
        ("domain", "evil.example", True, "green"),
        ("user-agent", "curl/8", False, "green"),
        ("domain", "c2.example", True, "green"),
        ("ip-dst", "198.51.100.7", True, "green"),
        ("url", normalise("url", "http://c2.example/gate.php"), True, "red"),
        ("sha256", "2" * 64, True, "green"),
    }
    assert all(i.first_seen is None and i.last_seen is None for i in got if i.type != "url")
    url = next(i for i in got if i.type == "url")
    assert url.first_seen == datetime(2026, 11, 30, 10, tzinfo=UTC) and url.comment == "panel"
    assert {(i.provider, i.event, i.confidence, i.threat_level) for i in got} == {
        ("CIRCL", EVENT_UUID, 90, 1)
    }
    assert result.skipped == {"type made-up-type": 1, "rejected": 3, "deleted": 2}
    assert [r.split(": ", 1)[1][:14] for r in result.rejected] == [
        "attribute 5 (a",
        "attribute 6 (a",
        "object 3: Unab",  # a deleted flag that is no flag: that object alone
    ]
    assert "a6" in result.rejected[1] and "not a date" in result.rejected[1]
    assert result.yara_rules == {"misp-y1": "rule r { condition: true }"}


def test_a_strict_read_stops_at_the_first_bad_attribute() -> None:
    attrs = [
        {"type": "ip-dst", "value": "192.0.2.1", "to_ids": True, "uuid": "ok"},
        {"type": "ip-dst", "value": "999.1.1.1", "to_ids": True, "uuid": "bad"},
    ]
    with pytest.raises(IndicatorFileError, match=r"e\.json: attribute 2 \(bad\)"):
        event_indicators(_event(attrs), Path("e.json"), LoadResult("e.json", "misp-event"))


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ([1, 2], "not a JSON object"),
        ({"Event": {"info": "x", "Attribute": {"type": "ip-dst"}}}, "lists"),
        (
            {"Event": {"date": "2026-12-01", "Attribute": []}},
            "info field",
        ),  # pymisp's own check of the event
        ({"Event": {"info": "x", "threat_level_id": "9"}}, "threat_level_id"),
    ],
)
def test_a_broken_event_is_refused_whole(doc: Any, reason: str) -> None:
    result = LoadResult("e.json", "misp-event", strict=False)
    with pytest.raises(IndicatorFileError, match=reason):
        event_indicators(doc, Path("e.json"), result)
    assert not result.skipped  # nothing of it counted


def _by_pymisp(doc: Any) -> set[tuple[Any, ...]] | None:
    """What pymisp's own objects say an event holds: the reference. None if pymisp
    refuses the event."""
    event = MISPEvent()
    try:
        event.load(json.loads(json.dumps(doc)))
    except Exception:
        return None
    attributes = list(event.attributes)
    for obj in event.objects:
        attributes.extend(obj.attributes)
    composite = indicator_types()["composite"]
    out = set()
    for a in attributes:
        if getattr(a, "deleted", False):
            continue
        first, last = getattr(a, "first_seen", None), getattr(a, "last_seen", None)
        parts = zip(composite.get(a.type, [a.type]), str(a.value).split("|"), strict=False)
        for kind, value in parts if a.type in composite else [(a.type, str(a.value))]:
            if supported_type(kind):
                out.add((kind, normalise(kind, value), bool(a.to_ids), first, last))
    return out


def test_the_corpus_events_read_as_pymisp_reads_them() -> None:
    """Every MISP event in the corpus (PyMISP's test files and MISP's core test feeds):
    the values, to_ids flags and dates read here are those of pymisp's objects."""
    compared = 0
    for path in sorted(corpus("misp").rglob("*.json")):
        try:
            doc = json.loads(path.read_bytes())
        except ValueError:
            continue
        for one in doc if isinstance(doc, list) else [doc]:
            expected = _by_pymisp(one)
            if expected is None:
                continue
            result = LoadResult(str(path), "misp-event", strict=False)
            try:
                got = event_indicators(one, path, result)
            except IndicatorFileError:
                continue  # not an event (a manifest, a sharing group list)
            assert {
                (i.type, i.value, i.to_ids, i.first_seen, i.last_seen) for i in got
            } == expected, path
            compared += bool(expected)
    assert compared >= 20


def test_the_spool_gives_back_what_it_was_given_once() -> None:
    seen = datetime(2026, 11, 30, 10, tzinfo=UTC)
    first = [
        Indicator("ip-dst", f"192.0.2.{n}", "CIRCL", event="e", first_seen=seen) for n in (1, 2)
    ]
    last = [Indicator("url", "a.example/", "x", False, 30, "amber", "e2", 4, None, seen, None, "c")]
    pages = [first, [], last]
    spool = Spool()
    for page in pages:
        spool.add(page)
    assert spool.count == 3
    assert list(spool.read()) == [i for page in pages for i in page]
    assert spool.file.closed  # read once: the file is gone


def test_read_ahead_gives_the_pages_in_order_and_their_error_in_place() -> None:
    import threading

    from rules.sources.readahead import read_ahead

    def pages(fail_at: int | None) -> Iterator[list[int]]:
        for n in range(5):
            if n == fail_at:
                raise ValueError(f"page {n} failed")
            yield [n * 10, n * 10 + 1]

    assert list(read_ahead(pages(None))) == [0, 1, 10, 11, 20, 21, 30, 31, 40, 41]
    got: list[int] = []
    with pytest.raises(ValueError, match="page 3 failed"):
        got.extend(read_ahead(pages(3)))
    assert got == [0, 1, 10, 11, 20, 21]  # everything before the failed page, in order
    stream = read_ahead(pages(None), depth=1)
    assert next(stream) == 0
    stream.close()  # a reader that stops early stops the thread
    assert not [t for t in threading.enumerate() if t.name == "read-ahead"]
