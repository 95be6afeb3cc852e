"""Extraction checked against Zeek's own logs for the corpora traces.

Each test compares multisets (who asked, what): recall and precision are 100 %
except for the differences named in EXPECTED_DIFFERENCES, each explained.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from sensors.engine import Content, Sensor, SensorConfig
from sensors.observation import Observation
from sensors.pcapfile import read_packets
from tests.conftest import corpus
from tests.zeeklog import read_log

Key = tuple[str, ...]

# (trace, log) -> (missing from ours, extra in ours), each explained.
EXPECTED_DIFFERENCES: dict[tuple[str, str], tuple[Counter[Key], Counter[Key]]] = {
    # NetBIOS name service (UDP 137) is parsed by Zeek's DNS analyser; we do not
    # decode NetBIOS names (yet): it carries no Internet names to match.
    ("opt.basic", "dns.log"): (
        Counter({("141.142.220.226", "BRWC0CB383D1F42"): 7, ("141.142.220.238", "WORKGROUP"): 1}),
        Counter(),
    ),
    # The first request of the trace starts before Zeek's connection state has
    # its SYN; Zeek drops it, we reassemble from mid-stream and keep it.
    ("opt.basic", "http.log"): (
        Counter(),
        Counter({("141.142.220.118", "www.wikipedia.org", "/"): 1}),
    ),
    # Zeek logs the URI percent-decoded; we keep the bytes as sent (URL
    # indicators are compared canonically, see rules.indicator.canonical_url).
    ("scripts.base.protocols.http.http-filename", "http.log"): (
        Counter(
            {
                (
                    "10.1.9.63",
                    "httpbin.org",
                    "/response-headers?Content-Type=application/octet-stream; "
                    'charset=UTF-8&Content-Disposition=attachment; filename="test.json"',
                ): 1
            }
        ),
        Counter(
            {
                (
                    "10.1.9.63",
                    "httpbin.org",
                    "/response-headers?Content-Type=application/octet-"
                    "stream;%20charset=UTF-8&Content-Disposition=attachment;%20filename%3d%22test"
                    ".json%22",
                ): 1
            }
        ),
    ),
}


def _observe(folder: Path) -> list[Observation]:
    return _observe_files(sorted((folder / "pcap").glob("*.pcap")))


def _observe_files(pcaps: list[Path]) -> list[Observation]:
    obs: list[Observation] = []
    sensor = Sensor(SensorConfig(), obs.append)
    for pcap in pcaps:
        for ts, lt, frame in read_packets(pcap):
            sensor.packet(ts, lt, frame)
        sensor.finish()
    return obs


def _path_of(o: Observation) -> str:
    url, domain = o.values["url.original"][0], o.values["url.domain"][0]
    return url.split(domain, 1)[1] if domain in url else url


CASES: list[
    tuple[str, str, str, Callable[[dict[str, str]], list[Key]], Callable[[Observation], list[Key]]]
] = []
for trace in (
    "opt.basic",
    "scripts.base.protocols.dns.binds",
    "scripts.base.protocols.dns.flip",
    "scripts.base.protocols.dns.multiple-txt-strings",
    "scripts.policy.protocols.dns.original_case",
):
    CASES.append(
        (
            "dns-http",
            trace,
            "dns.log",
            lambda r: [(r["id.orig_h"], r["query"])] if r["query"] != "-" else [],
            lambda o: [(o.src_ip, q) for q in o.values.get("dns.question.name", [])],
        )
    )
for group, trace in (
    ("dns-http", "opt.basic"),
    ("dns-http", "core.tcp.reassembly-known-ports"),
    ("http-files", "scripts.base.protocols.http.http-pipelining"),
    ("http-files", "scripts.base.protocols.http.http-filename"),
    ("http-files", "scripts.base.protocols.http.concurrent-range-requests"),
):
    CASES.append(
        (
            group,
            trace,
            "http.log",
            lambda r: [(r["id.orig_h"], r["host"], r["uri"])],
            lambda o: (
                [(o.src_ip, o.values["url.domain"][0], _path_of(o))]
                if "url.original" in o.values
                else []
            ),
        )
    )
CASES.append(
    (
        "tls",
        "scripts.base.protocols.ssl.basic",
        "ssl.log",
        lambda r: [(r["id.orig_h"], r["server_name"])] if r["server_name"] != "-" else [],
        lambda o: [(o.src_ip, s) for s in o.values.get("tls.client.server_name", [])],
    )
)
CASES.append(
    (
        "http-files",
        "scripts.base.frameworks.file-analysis.logging",
        "files.log",
        lambda r: [(r["md5"], r["sha1"], r["sha256"])],
        lambda o: (
            [
                (
                    o.values["file.hash.md5"][0],
                    o.values["file.hash.sha1"][0],
                    o.values["file.hash.sha256"][0],
                )
            ]
            if "file.hash.md5" in o.values
            else []
        ),
    )
)


@pytest.mark.parametrize(
    ("group", "trace", "log", "theirs", "ours"), CASES, ids=[f"{c[1]}:{c[2]}" for c in CASES]
)
def test_extraction_matches_zeek(
    group: str,
    trace: str,
    log: str,
    theirs: Callable[[dict[str, str]], list[Key]],
    ours: Callable[[Observation], list[Key]],
) -> None:
    folder = corpus("zeek-traces", group, trace)
    zeek = Counter(k for row in read_log(folder / "baseline" / log) for k in theirs(row))
    mine = Counter(k for o in _observe(folder) for k in ours(o))
    missing, extra = zeek - mine, mine - zeek
    expected_missing, expected_extra = EXPECTED_DIFFERENCES.get(
        (trace, log), (Counter(), Counter())
    )
    assert missing == expected_missing
    assert extra == expected_extra
    found = sum((zeek & mine).values())
    recall = found / max(1, sum(zeek.values()))
    precision = found / max(1, sum(mine.values()))
    print(f"{trace} {log}: recall {recall:.0%} precision {precision:.0%}")
    assert sum(zeek.values()) > 0


def test_dns_answers_and_http_user_agent_on_wikipedia() -> None:
    obs = _observe(corpus("zeek-traces", "dns-http", "opt.basic"))
    answers = Counter(a for o in obs for a in o.values.get("dns.answers.data", []))
    assert answers["208.80.152.3"] == 4 and answers["upload.pmtpa.wikimedia.org"] == 4
    agents = {a for o in obs for a in o.values.get("user_agent.original", [])}
    assert agents == {
        "Mozilla/5.0 (X11; U; Linux x86_64; en-US; rv:1.9.2.15) Gecko/20110303 "
        "Ubuntu/10.04 (lucid) Firefox/3.6.15"
    }
    flows = [o for o in obs if not o.values]
    assert len(flows) == 34 and all(o.community_id.startswith("1:") for o in flows)


def test_ja3_matches_suricata_verify_tls13_draft28() -> None:
    folder = corpus("suricata-verify", "tls__tls13-draft28")
    obs = _observe_files([folder / "tls13_draft28.pcap"])
    ja3 = sorted(j for o in obs for j in o.values.get("tls.client.ja3", []))
    # test.yaml: one tls event with each of these tls.ja3.hash values
    assert ja3 == ["43202faa1c8c1760d6f7f4bd9adde4ab", "d00857e0c8e7a7f35e446508c6233460"]
    assert {s for o in obs for s in o.values.get("tls.client.server_name", [])} == {"localhost"}


def test_server_certificate_names_match_zeek_x509_log() -> None:
    folder = corpus("zeek-traces", "tls", "scripts.base.protocols.ssl.basic")
    rows = read_log(folder / "baseline" / "x509.log")
    leaf = next(r for r in rows if r["host_cert"] == "T")
    cn = leaf["certificate.subject"].split(",")[0].removeprefix("CN=").lower()
    sans = set(leaf["san.dns"].split(",")) if leaf["san.dns"] != "-" else set()
    obs = [o for o in _observe(folder) if "tls.server.hash.sha1" in o.values]
    assert len(obs) == 1
    assert obs[0].values["tls.server.x509.subject.common_name"] == [cn]
    assert set(obs[0].values["tls.server.x509.alternative_names"]) == sans
    assert len(obs[0].values["tls.server.hash.sha1"]) == sum(1 for _ in rows)  # whole chain


def test_certificate_hashes_match_zeek_files_log() -> None:
    folder = corpus("zeek-traces", "tls", "scripts.base.files.x509.files")
    zeek = Counter(r["sha1"] for r in read_log(folder / "baseline" / "files.log"))
    mine = Counter(h for o in _observe(folder) for h in o.values.get("tls.server.hash.sha1", []))
    assert mine == zeek and sum(zeek.values()) == 6  # two connections, three certificates each


def _addresses(field: str) -> set[str]:
    from email.utils import getaddresses

    if field in ("-", "(empty)"):
        return set()
    return {a.lower() for _n, a in getaddresses(field.split(",")) if a}


@pytest.mark.parametrize(
    "trace", ["scripts.base.protocols.smtp.basic", "scripts.base.protocols.smtp.attachment"]
)
def test_smtp_addresses_match_zeek_smtp_log(trace: str) -> None:
    folder = corpus("zeek-traces", "smtp", trace)
    zeek = [
        (
            r["id.orig_h"],
            _addresses(r["mailfrom"]) | _addresses(r["from"]),
            _addresses(r["rcptto"]) | _addresses(r["to"]),
            _addresses(r["cc"]),
        )
        for r in read_log(folder / "baseline" / "smtp.log")
    ]
    mine = [
        (
            o.src_ip,
            set(o.values.get("email.from.address", [])),
            set(o.values.get("email.to.address", [])),
            set(o.values.get("email.cc.address", [])),
        )
        for o in _observe(folder)
        if "email.from.address" in o.values
    ]
    assert mine == zeek


def test_smtp_mime_parts_match_zeek_files_log() -> None:
    folder = corpus("zeek-traces", "smtp", "scripts.base.protocols.smtp.attachment")
    rows = read_log(folder / "baseline" / "files.log")
    contents: list[Content] = []
    sensor = Sensor(SensorConfig(), lambda o: None, contents.append)
    for pcap in (folder / "pcap").glob("*.pcap"):
        for item in read_packets(pcap):
            sensor.packet(*item)
    sensor.finish()
    zeek_sizes = sorted(int(r["seen_bytes"]) for r in rows)
    # Two text parts differ by the CRLF before the next boundary: RFC 2046 makes
    # it part of the boundary (as Python's email does); Zeek counts it in the part.
    assert zeek_sizes == [77, 204, 1868, 10809]
    assert sorted(len(c.data) for c in contents) == [77, 204, 1868 - 2, 10809 - 2]
    names = {n for c in contents for n in c.observation.values.get("file.name", [])}
    assert names == {r["filename"] for r in rows if r["filename"] != "-"} == {"NEWS.txt"}
    assert all(c.source == "email.attachment" for c in contents)
    # Each part's declared type and its size travel with it; Zeek's (sniffed) types agree.
    typed = sorted(
        (c.observation.values["file.mime_type"][0], int(c.observation.values["file.size"][0]))
        for c in contents
    )
    assert typed == sorted(
        (c.observation.values["file.mime_type"][0], len(c.data)) for c in contents
    )
    assert [t for t, _ in typed] == sorted(r["mime_type"] for r in rows)
    assert typed[0] == ("text/html", 1868 - 2)


def test_http_download_names_match_zeek_resp_filenames() -> None:
    """A response named by its Content-Disposition (Zeek's Files::IN_NAME for HTTP)."""
    folder = corpus("zeek-traces", "http-files", "scripts.base.protocols.http.http-filename")
    zeek = [
        (r["id.orig_h"], r["resp_filenames"])
        for r in read_log(folder / "baseline" / "http.log")
        if r["resp_filenames"] != "-"
    ]
    mine = [(o.src_ip, n) for o in _observe(folder) for n in o.values.get("file.name", [])]
    assert mine == zeek == [("10.1.9.63", "test.json")]


def test_ftp_retr_hash_matches_the_file_zeek_extracted() -> None:
    import hashlib

    folder = corpus("zeek-traces", "ftp", "scripts.base.files.extract.limit")
    whole = (folder / "baseline" / "extract_files.3").read_bytes()  # extracted without a limit
    files = [o for o in _observe(folder) if "file.hash.sha256" in o.values]
    assert [o.values["file.hash.sha256"] for o in files] == [[hashlib.sha256(whole).hexdigest()]]
    assert files[0].protocol == "ftp-data" and files[0].dst_port == 38141
    assert files[0].values["file.size"] == ["16557"] and "file.mime_type" not in files[0].values
    seen = read_log(folder / "baseline" / "files.log")[0]
    assert len(whole) == int(seen["seen_bytes"]) == 16557


def test_ftp_passive_and_active_transfers_match_zeek_ftp_log() -> None:
    folder = corpus("zeek-traces", "ftp", "scripts.base.protocols.ftp.ftp-ipv4")
    retr = [r for r in read_log(folder / "baseline" / "ftp.log") if r["command"] == "RETR"]
    contents: list[Content] = []
    sensor = Sensor(SensorConfig(), lambda o: None, contents.append)
    for item in read_packets(folder / "pcap" / "ipv4.pcap"):
        sensor.packet(*item)
    sensor.finish()
    # Directory listings travel on data connections too; only RETR files are files.
    assert [(c.observation.values["file.name"], len(c.data)) for c in contents] == [
        ([r["arg"].rsplit("/", 1)[-1]], int(r["file_size"])) for r in retr
    ]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_deep_dissection_of_dtls_hellos_matches_zeek_connections() -> None:
    from sensors import deep

    folder = corpus("zeek-traces", "tls", "scripts.policy.protocols.ssl.ssl-log-ext")
    zeek = {
        (r["id.orig_h"], int(r["id.orig_p"]), r["id.resp_h"], int(r["id.resp_p"]))
        for r in read_log(folder / "baseline" / "ssl-all.log")
        if r["version"].startswith("DTLS")
    }
    seen = []
    for name in ("dtls1_0.pcap", "dtls1_2.pcap"):
        seen += list(deep.observe(folder / "pcap" / name, "deep-test"))
    assert {(o.src_ip, o.src_port, o.dst_ip, o.dst_port) for o in seen} == zeek
    assert all(o.protocol == "dtls" and len(o.values["tls.client.ja3"][0]) == 32 for o in seen)
    # The fast path sees none of this: DTLS is exactly what the deep backend is for.
    assert not [
        o
        for o in _observe_files([folder / "pcap" / "dtls1_2.pcap"])
        if "tls.client.ja3" in o.values
    ]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_deep_pass_over_a_truncated_file_keeps_what_it_read_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from sensors import deep

    pcap = corpus(
        "zeek-traces", "tls", "scripts.policy.protocols.ssl.ssl-log-ext", "pcap", "dtls1_2.pcap"
    )
    whole = list(deep.observe(pcap, "deep-test"))
    data = pcap.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 7])  # the last record cut short
    with caplog.at_level("WARNING", logger="vigia.sensor.deep"):
        partial = list(deep.observe(cut, "deep-test"))
    assert [o.values for o in partial] == [o.values for o in whole[: len(partial)]]
    assert len(partial) >= 1
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "stopped early" in warning and "cut short" in warning
