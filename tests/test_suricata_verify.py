"""suricata-verify cases whose keywords map to indicators, scored hit-for-hit.

Each case's rule names a list (a dataset, an MD5 list, a reputation file, a
dotprefix content, a certificate fingerprint); it becomes indicators of the
matching MISP type, the case's pcap goes through `vigia scan`'s path, and the
hits on the field the keyword inspects must equal Suricata's expected count.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from correlator.index import IndicatorIndex
from correlator.matcher import Matcher
from correlator.offline import scan
from rules.indicator import Indicator, normalise
from tests.conftest import corpus


def _checks(folder: Path) -> list[dict[str, Any]]:
    doc = yaml.safe_load((folder / "test.yaml").read_text())
    return [c["filter"] for c in doc["checks"] if "filter" in c]


def _expected(folder: Path, **match: Any) -> int:
    for f in _checks(folder):
        m = f.get("match", {})
        if all(m.get(k) == v for k, v in match.items()):
            return int(f["count"])
    raise AssertionError(f"no check with {match} in {folder}")


def _hits(folder: Path, pcap: str, indicators: list[Indicator], field: str) -> int:
    alerts, _summary = scan([folder / pcap], Matcher(IndicatorIndex(indicators)), 3600, "sv")
    return sum(
        a["event"]["count"]
        for a in alerts
        if a["threat"]["enrichments"][0]["matched"]["field"] == field
    )


def _ind(itype: str, value: str) -> Indicator:
    return Indicator(itype, normalise(itype, value), "suricata-verify")


def test_datasets_string_on_http_user_agent() -> None:
    folder = corpus("suricata-verify", "datasets-02-load")
    agents = [base64.b64decode(x).decode() for x in (folder / "datasets.csv").read_text().split()]
    got = _hits(
        folder, "shared__input.pcap", [_ind("user-agent", a) for a in agents], "user_agent.original"
    )
    assert got == _expected(folder, event_type="alert", **{"alert.signature_id": 1})


def test_filemd5_list() -> None:
    folder = corpus("suricata-verify", "bug-2576-01")
    md5s = (folder / "md5list.2576").read_text().split()
    got = _hits(folder, "temp6.pcap", [_ind("md5", h) for h in md5s], "file.hash.md5")
    assert got == _expected(folder, event_type="alert", **{"alert.signature_id": 3})


@pytest.mark.parametrize(("sid", "domain"), [(1, "windowsupdate.com"), (2, "com")])
def test_dns_query_dotprefix_is_domain_semantics(sid: int, domain: str) -> None:
    # `dns.query; dotprefix; content:".X"` matches X's subdomains: a MISP `domain`.
    folder = corpus("suricata-verify", "detect-dotprefix-01")
    got = _hits(folder, "input.pcap", [_ind("domain", domain)], "dns.question.name")
    assert got == _expected(folder, event_type="alert", **{"alert.signature_id": sid})


def test_datarep_above_threshold_on_dns_query() -> None:
    # `datarep:dns_string, >, 200`: the entries scored above 200 are the indicators.
    folder = corpus("suricata-verify", "datarep-01")
    names = []
    for line in (folder / "dns_string.rep").read_text().split():
        value, score = line.rsplit(",", 1)
        if int(score) > 200:
            names.append(base64.b64decode(value).decode())
    got = _hits(folder, "input.pcap", [_ind("hostname", n) for n in names], "dns.question.name")
    assert got == _expected(folder, event_type="alert", **{"alert.signature_id": 1})


def test_certificate_fingerprint() -> None:
    folder = corpus("suricata-verify", "bug-2646-01")
    check = next(f for f in _checks(folder) if "tls.fingerprint" in f.get("match", {}))
    sha1 = check["match"]["tls.fingerprint"].replace(":", "")
    got = _hits(folder, "input.pcap", [_ind("x509-fingerprint-sha1", sha1)], "tls.server.hash.sha1")
    assert got == int(check["count"])


def test_iprep_counts_packets_we_count_flows() -> None:
    """iprep alerts once per packet; Vigía's address match is once per flow (as Zeek).

    Hit-for-hit is not the same question here: every flow Suricata alerts on
    must be an alert here, and the packets it counts all belong to them."""
    folder = corpus("suricata-verify", "iprep-06-bug-6834-dst")
    ips = [line.split(",")[0] for line in (folder / "iprep.list").read_text().split()]
    alerts, _ = scan(
        [folder / "shared__input.pcap"],
        Matcher(IndicatorIndex([_ind("ip-dst", ip) for ip in ips])),
        3600,
        "sv",
    )
    dests = {a["destination"]["ip"] for a in alerts}
    expected = {
        f["match"]["dest_ip"]
        for f in _checks(folder)
        if "dest_ip" in f.get("match", {}) and f["count"] > 0
    }
    assert dests == expected


@pytest.mark.parametrize(("sid", "name"), [(1, "google.com"), (2, "google.net")])
def test_dns_query_once_per_query_not_on_responses(sid: int, name: str) -> None:
    # `dns_query; content:"X"`: the name X as asked; a response must not count again.
    folder = corpus("suricata-verify", "dns__dns-query__dns-detect-query-02")
    got = _hits(folder, "input.pcap", [_ind("hostname", name)], "dns.question.name")
    assert got == _expected(folder, event_type="alert", **{"alert.signature_id": sid})


def test_ja3s_server_fingerprint() -> None:
    # `ja3s.hash; content:"…"`: a MISP ja3-fingerprint-md5 seen as the server's JA3S.
    import hashlib

    folder = corpus("suricata-verify", "tls__tls-ja3s")
    check = next(f for f in _checks(folder) if "tls.ja3s.hash" in f.get("match", {}))
    ja3s, string = check["match"]["tls.ja3s.hash"], check["match"]["tls.ja3s.string"]
    assert hashlib.md5(string.encode()).hexdigest() == ja3s  # the string our hash is made of
    got = _hits(
        folder, "shared__input.pcap", [_ind("ja3-fingerprint-md5", ja3s)], "tls.server.ja3s"
    )
    assert got == int(check["count"])
