"""STIX 2.1 bundles: the comparison subset loads, the rest is counted with its reason."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from correlator.index import IndicatorIndex
from rules.sources import IndicatorFileError, load_indicator_file
from tests.conftest import corpus

EXAMPLES = ("stix", "cti-stix2-json-schemas", "examples")


@pytest.mark.parametrize(
    ("name", "loaded", "skipped"),
    [
        ("indicator-for-c2-ip-address.json", [("ip-dst", "10.0.0.0")], {}),
        (
            "indicators-for-C2-with-COA.json",
            [
                ("ip-dst", "10.0.0.0"),
                ("sha256", "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c"),
            ],
            {},
        ),
        (
            "malicious-email-indicator-with-attachment.json",
            [],
            {
                "email-message:subject MATCHES": 1,
                "email-message:body_multipart.*.body_raw_ref.name MATCHES": 1,
            },
        ),
    ],
)
def test_oasis_examples(name: str, loaded: list[tuple[str, str]], skipped: dict[str, int]) -> None:
    r = load_indicator_file(corpus(*EXAMPLES, name))
    assert r.format == "stix"
    assert [(i.type, i.value) for i in r.indicators] == loaded
    assert dict(r.skipped) == skipped


def test_threat_reports_load_what_is_atomic() -> None:
    apt1 = load_indicator_file(corpus(*EXAMPLES, "threat-reports", "apt1.json"))
    assert Counter(i.type for i in apt1.indicators) == {"ip-dst": 4, "hostname": 3, "md5": 3}
    assert "223.166.0.0/15" in {i.value for i in apt1.indicators}
    assert dict(apt1.skipped) == {"AND or FOLLOWEDBY: not an atomic indicator": 2}
    ivy = load_indicator_file(corpus(*EXAMPLES, "threat-reports", "poisonivy.json"))
    # OASIS's own example has a domain-name "domain autuo.xicp.net": skipped, counted
    assert dict(ivy.skipped) == {"invalid hostname value": 1, "file:name =": 2}
    assert len(ivy.indicators) == 64


def test_markings_types_and_validity(tmp_path: Path) -> None:
    amber_strict = "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"
    bundle = {
        "type": "bundle",
        "id": "bundle--x",
        "objects": [
            {"type": "identity", "id": "identity--cert", "name": "CERT-EJEMPLO"},
            {
                "type": "indicator",
                "id": "indicator--1",
                "pattern_type": "stix",
                "created_by_ref": "identity--cert",
                "object_marking_refs": [amber_strict],
                "confidence": 85,
                "valid_until": "2030-01-01T00:00:00Z",
                "pattern": "[ipv6-addr:value = '2001:db8::/32' OR "
                "x509-certificate:hashes.'SHA-1' = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA']",
            },
            {
                "type": "indicator",
                "id": "indicator--2",
                "pattern_type": "stix",
                "pattern": "[email-message:from_ref.value = 'Phish@Example.COM' AND "
                "email-message:subject = 'x']",
            },
            {
                "type": "indicator",
                "id": "indicator--3",
                "pattern_type": "stix",
                "pattern": "[email-message:to_refs[*].value = 'victim@gob.bo']",
            },
            {"type": "indicator", "id": "indicator--4", "pattern_type": "sigma", "pattern": "x"},
            {
                "type": "indicator",
                "id": "indicator--5",
                "pattern_type": "stix",
                "pattern": "[ipv4-addr:value = '1.2.3.4'] REPEATS 2 TIMES",
            },
            {"type": "indicator", "id": "indicator--6", "pattern_type": "stix", "pattern": "[nope"},
        ],
    }
    p = tmp_path / "b.json"
    p.write_text(json.dumps(bundle))
    r = load_indicator_file(p)
    got = [(i.type, i.value, i.tlp, i.provider, i.confidence) for i in r.indicators]
    assert got == [
        ("ip-dst", "2001:db8::/32", "amber+strict", "CERT-EJEMPLO", 85),
        ("x509-fingerprint-sha1", "a" * 40, "amber+strict", "CERT-EJEMPLO", 85),
        ("email-dst", "victim@gob.bo", "clear", "stix", 50),
    ]
    assert r.indicators[0].expires is not None and r.indicators[0].expires.year == 2030
    assert dict(r.skipped) == {
        "AND or FOLLOWEDBY: not an atomic indicator": 1,
        "pattern_type sigma": 1,
        "qualifier (WITHIN, REPEATS, START/STOP)": 1,
        "invalid pattern": 1,
    }


def test_pattern_matcher_cases_of_the_supported_subset() -> None:
    folder = corpus("stix", "pattern-matcher-cases")
    cases = json.loads((folder / "cases.json").read_text())["cases"]
    subset = [c for c in cases if c["pattern"].startswith("[ipv4-addr:value")]
    assert len(subset) == 2
    for case in subset:
        observations = json.loads(
            (folder / (Path(case["file"]).stem + ".observations.json")).read_text()
        )[case["observations_ref"]]
        bundle = {
            "type": "bundle",
            "id": "bundle--c",
            "objects": [
                {
                    "type": "indicator",
                    "id": "indicator--c",
                    "pattern_type": "stix",
                    "pattern": case["pattern"],
                }
            ],
        }
        loaded = _load(bundle)
        if "REPEATS" in case["pattern"]:  # counts over time: not an atomic indicator
            assert loaded.indicators == [] and sum(loaded.skipped.values()) == 1
            continue
        index = IndicatorIndex(loaded.indicators)
        seen = [
            o["value"]
            for bundle in observations
            for o in bundle["objects"]
            if o.get("type") == "ipv4-addr"
        ]
        assert seen
        verdict = "match" if any(index.lookup("destination.ip", v) for v in seen) else "nomatch"
        assert verdict == case["expect"]


def _load(bundle: dict[str, object]):  # type: ignore[no-untyped-def]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "b.json"
        p.write_text(json.dumps(bundle))
        return load_indicator_file(p)


def test_a_single_object_is_not_a_bundle() -> None:
    with pytest.raises(IndicatorFileError, match="a single STIX object"):
        load_indicator_file(corpus(*EXAMPLES, "interop-objectmarking-test.json"))


@pytest.mark.parametrize(
    ("folder", "expected"),
    [
        ("csv", [("ip-dst", "1.1.1.1"), ("ip-dst", "1.0.0.1")]),
        ("freetext", [("ip-dst", "8.8.8.8"), ("ip-dst", "8.8.4.4")]),
    ],
)
def test_misp_core_csv_and_freetext_feeds(folder: str, expected: list[tuple[str, str]]) -> None:
    base = corpus("misp", "misp-core-test-feeds", folder)
    path = next(p for p in base.iterdir() if p.is_file())
    r = load_indicator_file(path)
    assert r.format == "freetext"
    assert [(i.type, i.value) for i in r.indicators] == expected


def test_freetext_types_and_refanging(tmp_path: Path) -> None:
    p = tmp_path / "feed.txt"
    p.write_text(
        "# a feed of our own\nhxxp://evil[.]example/x.php  bad.example\n"
        "c2.bad.example, seen 2024-01-01\n" + "ab" * 16 + " 198.51.100.0/24\n"
        "phish@evil.example\n"
    )
    r = load_indicator_file(p)
    assert [(i.type, i.value) for i in r.indicators] == [
        ("url", "evil.example/x.php"),
        ("domain", "bad.example"),
        ("hostname", "c2.bad.example"),
        ("md5", "ab" * 16),
        ("ip-dst", "198.51.100.0/24"),
        ("email", "phish@evil.example"),
    ]


def test_lenient_loading_rejects_records_with_their_position(tmp_path: Path) -> None:
    zeek = tmp_path / "intel.dat"
    zeek.write_text(
        "#fields\tindicator\tindicator_type\n1.2.3.4\tIntel::ADDR\n"
        "not-an-ip\tIntel::ADDR\n5.6.7.8\tIntel::ADDR\textra\nx.example\tIntel::DOMAIN\n"
    )
    with pytest.raises(IndicatorFileError, match=r"intel\.dat:3"):
        load_indicator_file(zeek)  # strict, as `vigia scan` reads
    r = load_indicator_file(zeek, strict=False)
    assert [i.value for i in r.indicators] == ["1.2.3.4", "x.example"]
    assert [x.split(": ")[0].rsplit("/", 1)[-1] for x in r.rejected] == [
        "intel.dat:3",
        "intel.dat:4",
    ]
    feed = tmp_path / "feed"
    feed.mkdir()
    good = {
        "Event": {
            "uuid": "e1",
            "info": "ok",
            "Attribute": [{"type": "ip-dst", "value": "192.0.2.1", "to_ids": True}],
        }
    }
    (feed / "e1.json").write_text(json.dumps(good))
    (feed / "e2.json").write_text("{broken")
    (feed / "manifest.json").write_text(
        json.dumps({"e1": {"info": "ok"}, "e2": {"info": "x"}, "e3": {"info": "missing"}})
    )
    r = load_indicator_file(feed, strict=False)
    assert [i.value for i in r.indicators] == ["192.0.2.1"]
    assert r.skipped["rejected"] == 2  # the broken event and the missing one
