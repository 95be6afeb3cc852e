"""`vigia scan` end to end: real traces, indicator files in every format, YARA, bad input.

Expected counts come from Zeek's own logs for the same trace.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import corpus
from tests.zeeklog import read_log

HOST, ADDR = "upload.wikimedia.org", "208.80.152.2"
URL = "http://meta.wikimedia.org/images/wikimedia-button.png"


def vigia(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vigia", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def alerts_of(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def misp_event(attrs: list[tuple[str, str]], tlp: str = "green") -> dict[str, Any]:
    return {
        "Event": {
            "uuid": "5e1a6f3c-1d2b-4c5a-9e8f-0a1b2c3d4e5f",
            "info": "test",
            "threat_level_id": "2",
            "Orgc": {"name": "CERT-TEST"},
            "Tag": [{"name": f"tlp:{tlp}"}],
            "Attribute": [
                {
                    "type": t,
                    "value": v,
                    "to_ids": True,
                    "category": "Network activity",
                    "uuid": f"5e1a6f3c-1d2b-4c5a-9e8f-0a1b2c3d4e{n:02d}",
                }
                for n, (t, v) in enumerate(attrs)
            ],
        }
    }


def write_formats(tmp: Path) -> dict[str, Path]:
    """The same three indicators, once per supported format."""
    attrs = [("hostname", HOST), ("ip-dst", ADDR), ("url", URL)]
    event = tmp / "event.json"
    event.write_text(json.dumps(misp_event(attrs)))
    feed = tmp / "feed"
    feed.mkdir()
    doc = misp_event(attrs)
    (feed / f"{doc['Event']['uuid']}.json").write_text(json.dumps(doc))
    (feed / "manifest.json").write_text(json.dumps({doc["Event"]["uuid"]: {"info": "test"}}))
    zeek = tmp / "intel.dat"
    zeek.write_text(
        "#fields\tindicator\tindicator_type\tmeta.source\n"
        f"{HOST}\tIntel::DOMAIN\ttest\n{ADDR}\tIntel::ADDR\ttest\n"
        "meta.wikimedia.org/images/wikimedia-button.png\tIntel::URL\ttest\n"
    )
    csv = tmp / "iocs.csv"
    csv.write_text(
        f"type,value,provider\nhostname,{HOST},test\nip-dst,{ADDR},test\nurl,{URL},test\n"
    )
    stix = tmp / "bundle.json"
    patterns = [
        f"[domain-name:value = '{HOST}']",
        f"[ipv4-addr:value = '{ADDR}'] OR [url:value = '{URL}']",
    ]
    stix.write_text(
        json.dumps(
            {
                "type": "bundle",
                "id": "bundle--1",
                "objects": [
                    {
                        "type": "indicator",
                        "spec_version": "2.1",
                        "id": f"indicator--{n}",
                        "pattern_type": "stix",
                        "pattern": p,
                        "valid_from": "2024-01-01T00:00:00Z",
                    }
                    for n, p in enumerate(patterns)
                ],
            }
        )
    )
    return {"misp-event": event, "misp-feed": feed, "zeek-intel": zeek, "csv": csv, "stix": stix}


@pytest.fixture
def wikipedia() -> Path:
    return corpus("zeek-traces", "dns-http", "opt.basic", "pcap", "wikipedia.pcap")


def zeek_counts() -> dict[str, int]:
    base = corpus("zeek-traces", "dns-http", "opt.basic", "baseline")
    return {
        "dns.question.name": sum(r["query"] == HOST for r in read_log(base / "dns.log")),
        "url.domain": sum(r["host"] == HOST for r in read_log(base / "http.log")),
        "destination.ip": sum(r["id.resp_h"] == ADDR for r in read_log(base / "conn.log")),
        "url.original": 1,
    }


@pytest.mark.parametrize("fmt", ["misp-event", "misp-feed", "zeek-intel", "csv", "stix"])
def test_scan_each_format_gives_exact_alerts(tmp_path: Path, wikipedia: Path, fmt: str) -> None:
    path = write_formats(tmp_path)[fmt]
    res = vigia("scan", wikipedia, "--indicators", path)
    assert res.returncode == 0, res.stderr
    alerts = alerts_of(res.stdout)
    by_field = {a["threat"]["enrichments"][0]["matched"]["field"]: a for a in alerts}
    assert len(alerts) == len(by_field) == 4  # one alert per field: all hits fold
    assert {f: a["event"]["count"] for f, a in by_field.items()} == zeek_counts()
    ip = by_field["destination.ip"]
    assert ip["destination"]["ip"] == ADDR and ip["source"]["ip"] == "141.142.220.118"
    for a in alerts:
        assert a["event"]["kind"] == "alert" and len(a["event"]["id"]) == 32
        enr = a["threat"]["enrichments"][0]
        assert enr["matched"]["type"] == "indicator_match"
        assert {"type", "value", "provider", "confidence"} <= enr["indicator"].keys()
        assert a["observer"]["name"] == "vigia-scan"
    assert by_field["url.original"]["threat"]["enrichments"][0]["matched"]["atomic"] == URL
    summary = res.stderr.strip().splitlines()[-1]
    assert "136 packets" in summary and "alerts 4 (indicator_match 4)" in summary
    assert "packets/s" in summary


def test_event_ids_are_deterministic_and_windowed(tmp_path: Path, wikipedia: Path) -> None:
    path = write_formats(tmp_path)["csv"]
    first = {a["event"]["id"] for a in alerts_of(vigia("scan", wikipedia, "-i", path).stdout)}
    again = {a["event"]["id"] for a in alerts_of(vigia("scan", wikipedia, "-i", path).stdout)}
    assert first == again
    # A 1-second window splits the hits of the trace's seconds into more alerts.
    small = alerts_of(vigia("scan", wikipedia, "-i", path, "--window", "1").stdout)
    assert len(small) > 4
    assert sum(a["event"]["count"] for a in small) == sum(zeek_counts().values())


def test_domain_matches_subdomains_hostname_does_not(tmp_path: Path, wikipedia: Path) -> None:
    ev = tmp_path / "e.json"
    ev.write_text(json.dumps(misp_event([("domain", "wikimedia.org")])))
    alerts = alerts_of(vigia("scan", wikipedia, "-i", ev).stdout)
    seen = {a["threat"]["enrichments"][0]["matched"]["atomic"] for a in alerts}
    assert {
        "upload.wikimedia.org",
        "meta.wikimedia.org",
        "bits.wikimedia.org",
        "upload.pmtpa.wikimedia.org",
        "text.wikimedia.org",
    } <= seen
    hn = tmp_path / "h.csv"
    hn.write_text("type,value\nhostname,wikimedia.org\n")
    assert alerts_of(vigia("scan", wikipedia, "-i", hn).stdout) == []


def test_to_ids_false_is_not_matched(tmp_path: Path, wikipedia: Path) -> None:
    csv = tmp_path / "i.csv"
    csv.write_text(f"type,value,to_ids\nhostname,{HOST},false\n")
    res = vigia("scan", wikipedia, "-i", csv)
    assert res.returncode == 0 and alerts_of(res.stdout) == []


def test_yara_on_http_body(tmp_path: Path) -> None:
    pcap = corpus("zeek-traces", "dns-http", "core.tcp.reassembly-known-ports", "pcap", "get.pcap")
    files = read_log(
        corpus(
            "zeek-traces",
            "http-files",
            "scripts.base.frameworks.file-analysis.logging",
            "baseline",
            "files.log",
        )
    )
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "gpg.yar").write_text(
        'rule bro_changelog : changelog { strings: $a = "Fixing GPG signing script" '
        "condition: $a }\n"
    )
    (rules / "other.yar").write_text('rule never { strings: $a = "no such text" condition: $a }\n')
    out = tmp_path / "alerts.jsonl"
    res = vigia("scan", pcap, "--yara", rules, "--out", out)
    assert res.returncode == 0, res.stderr
    alerts = alerts_of(out.read_text())
    assert len(alerts) == 1
    a = alerts[0]
    enr = a["threat"]["enrichments"][0]
    assert enr["matched"] == {
        "atomic": files[0]["sha256"],
        "field": "file.hash.sha256",
        "type": "yara_match",
    }
    assert a["rule"]["name"] == "bro_changelog" and a["rule"]["ruleset"].startswith("rules@")
    assert a["tags"] == ["changelog"]


def test_gzip_and_chunked_bodies_reach_yara(tmp_path: Path) -> None:
    import gzip

    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    body = gzip.compress(b"<html>EVIL-MARKER-42</html>")
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    req = b"GET /x.html HTTP/1.1\r\nHost: example.test\r\n\r\n"
    resp = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n" + chunked
    )
    c, s = "10.9.0.1", "10.9.0.2"
    pkts = [
        Ether() / IP(src=c, dst=s) / TCP(sport=40000, dport=80, flags="S", seq=100),
        Ether() / IP(src=s, dst=c) / TCP(sport=80, dport=40000, flags="SA", seq=500, ack=101),
        Ether() / IP(src=c, dst=s) / TCP(sport=40000, dport=80, flags="PA", seq=101) / req,
        Ether()
        / IP(src=s, dst=c)
        / TCP(sport=80, dport=40000, flags="PA", seq=501 + 10)
        / resp[10:],  # out of order: the tail first
        Ether() / IP(src=s, dst=c) / TCP(sport=80, dport=40000, flags="PA", seq=501) / resp[:10],
    ]
    pcap = tmp_path / "gz.pcap"
    wrpcap(str(pcap), pkts)
    rule = tmp_path / "r.yar"
    rule.write_text('rule marker { strings: $a = "EVIL-MARKER-42" condition: $a }\n')
    res = vigia("scan", pcap, "--yara", rule)
    assert res.returncode == 0, res.stderr
    assert [a["rule"]["name"] for a in alerts_of(res.stdout)] == ["marker"]


# -- bad input: exit 2, one line naming the file, no traceback ------------


def _one_line_error(res: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stderr)
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("vigia: ")
    for n in needles:
        assert n in last
    assert "Traceback" not in res.stderr


def test_truncated_pcap_keeps_alerts_and_exits_2(tmp_path: Path, wikipedia: Path) -> None:
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(wikipedia.read_bytes()[:20_000])
    res = vigia("scan", cut, "-i", write_formats(tmp_path)["csv"])
    _one_line_error(res, "cut.pcap", "truncated after packet")
    assert alerts_of(res.stdout), "alerts from the packets before the cut are kept"


def test_not_a_pcap_and_missing_file(tmp_path: Path) -> None:
    txt = tmp_path / "notes.pcap"
    txt.write_text("not a capture\n")
    ind = write_formats(tmp_path)["csv"]
    _one_line_error(vigia("scan", txt, "-i", ind), "notes.pcap", "not a pcap")
    _one_line_error(vigia("scan", tmp_path / "nope.pcap", "-i", ind), "nope.pcap", "cannot open")


@pytest.mark.parametrize(
    ("name", "content", "needles"),
    [
        (
            "bad.json",
            '{"Event": {"info": "x", "Attribute": [{"type": "ip-dst", "value": "999.1.1.1"}]}}',
            ["bad.json", "not an IP address"],
        ),
        ("broken.json", '{"Event": ', ["broken.json", "invalid JSON"]),
        (
            "intel.dat",
            "#fields\tindicator\tindicator_type\n1.2.3.4\tIntel::ADDR\textra\n",
            ["intel.dat:2", "columns"],
        ),
        ("iocs.csv", "type,value\nip-dst,1.2.3.4\nsha256,xyz\n", ["iocs.csv:3", "sha256"]),
        ("random.txt", "hello world\n", ["random.txt", "not a recognised indicator file"]),
    ],
)
def test_bad_indicator_files(
    tmp_path: Path, wikipedia: Path, name: str, content: str, needles: list[str]
) -> None:
    p = tmp_path / name
    p.write_text(content)
    res = vigia("scan", wikipedia, "-i", p)
    _one_line_error(res, *needles)
    assert res.stdout == ""


def test_bad_yara_rule_names_file_and_line(tmp_path: Path, wikipedia: Path) -> None:
    good = tmp_path / "a_good.yar"
    good.write_text('rule ok { strings: $a = "x" condition: $a }\n')
    bad = tmp_path / "b_bad.yar"
    # yara reports the error at the end of the rule's condition: line 4
    bad.write_text('rule broken {\n  strings: $a = "x"\n  condition: $b\n}\n')
    _one_line_error(vigia("scan", wikipedia, "--yara", tmp_path), "b_bad.yar:4", "undefined string")


def test_malformed_packets_are_counted_and_skipped(tmp_path: Path) -> None:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    good = Ether() / IP(src="10.0.0.1", dst=ADDR) / UDP(sport=1, dport=2)
    broken = bytes(good)[:20]  # IP header cut short
    pcap = tmp_path / "m.pcap"
    wrpcap(str(pcap), [good, Ether(broken), good])
    res = vigia("scan", pcap, "-i", write_formats(tmp_path)["csv"])
    assert res.returncode == 0, res.stderr
    assert "3 packets (2 decoded, 1 malformed" in res.stderr
    assert Counter(
        a["threat"]["enrichments"][0]["matched"]["field"] for a in alerts_of(res.stdout)
    ) == {"destination.ip": 1}


@pytest.mark.parametrize("fmt", ["misp-event", "zeek-intel", "csv"])
def test_tls_sni_and_ja3_on_the_tls_trace(tmp_path: Path, fmt: str) -> None:
    folder = corpus("zeek-traces", "tls", "scripts.base.protocols.ssl.basic")
    pcap = folder / "pcap" / "tls-conn-with-extensions.pcap"
    sni = read_log(folder / "baseline" / "ssl.log")[0]["server_name"]
    ja3 = "62351d5ea3cd4f21f697965b10a9bbbe"  # the trace's ClientHello, as tshark computes it
    if fmt == "misp-event":
        path = tmp_path / "e.json"
        path.write_text(json.dumps(misp_event([("hostname", sni), ("ja3-fingerprint-md5", ja3)])))
    elif fmt == "zeek-intel":
        path = tmp_path / "intel.dat"
        path.write_text(f"#fields\tindicator\tindicator_type\n{sni}\tIntel::DOMAIN\n")
    else:
        path = tmp_path / "i.csv"
        path.write_text(f"type,value\nhostname,{sni}\nja3-fingerprint-md5,{ja3}\n")
    res = vigia("scan", pcap, "-i", path)
    assert res.returncode == 0, res.stderr
    got = Counter(
        (a["threat"]["enrichments"][0]["matched"]["field"], a["event"]["count"])
        for a in alerts_of(res.stdout)
    )
    expected = Counter({("tls.client.server_name", 1): 1})
    if fmt != "zeek-intel":  # Zeek intel has no JA3 type
        expected[("tls.client.ja3", 1)] = 1
    assert got == expected


def test_pcapng_gives_the_same_alerts(tmp_path: Path, wikipedia: Path) -> None:
    from scapy.utils import PcapNgWriter, rdpcap

    ng = tmp_path / "wikipedia.pcapng"
    with PcapNgWriter(str(ng)) as w:
        for p in rdpcap(str(wikipedia)):
            w.write(p)
    ind = write_formats(tmp_path)["csv"]
    a = alerts_of(vigia("scan", wikipedia, "-i", ind).stdout)
    b = alerts_of(vigia("scan", ng, "-i", ind).stdout)
    assert [x["event"]["id"] for x in a] == [x["event"]["id"] for x in b]
    assert [x["event"]["count"] for x in a] == [x["event"]["count"] for x in b]


def test_progress_bar_only_on_a_terminal(tmp_path: Path, wikipedia: Path) -> None:
    import os
    import pty

    ind = write_formats(tmp_path)["csv"]
    big = tmp_path / "big.pcap"  # long enough for the bar to draw
    big.write_bytes(wikipedia.read_bytes())
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vigia", "scan", str(big), "-i", str(ind)],
        stdout=subprocess.PIPE,
        stderr=secondary,
        env={**os.environ, "COLUMNS": "100"},
    )
    os.close(secondary)
    out, _ = proc.communicate(timeout=60)
    chunks = []
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(primary)
    tty_err = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0
    assert "escaneando" in tty_err  # the bar's label, drawn on the terminal
    plain = vigia("scan", wikipedia, "-i", ind)
    assert "escaneando" not in plain.stderr  # not when stderr is a pipe
    assert len(alerts_of(out.decode())) == 4


def test_x_forwarded_for_matches_address_indicators(tmp_path: Path) -> None:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    req = (
        b"GET / HTTP/1.1\r\nHost: intranet.test\r\nX-Forwarded-For: 198.51.100.77, 10.0.0.9\r\n\r\n"
    )
    pkts = [
        Ether() / IP(src="10.1.1.1", dst="10.1.1.2") / TCP(sport=4000, dport=80, flags="S", seq=1),
        Ether()
        / IP(src="10.1.1.1", dst="10.1.1.2")
        / TCP(sport=4000, dport=80, flags="PA", seq=2)
        / req,
    ]
    pcap = tmp_path / "xff.pcap"
    wrpcap(str(pcap), pkts)
    ind = tmp_path / "i.csv"
    ind.write_text("type,value\nip-src,198.51.100.0/24\n")
    alerts = alerts_of(vigia("scan", pcap, "-i", ind).stdout)
    assert [
        (
            a["threat"]["enrichments"][0]["matched"]["field"],
            a["threat"]["enrichments"][0]["matched"]["atomic"],
        )
        for a in alerts
    ] == [("network.forwarded_ip", "198.51.100.77")]


def test_deep_scan_matches_dtls_ja3(tmp_path: Path) -> None:
    import shutil

    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    pcap = corpus(
        "zeek-traces", "tls", "scripts.policy.protocols.ssl.ssl-log-ext", "pcap", "dtls1_2.pcap"
    )
    ind = tmp_path / "i.csv"
    ind.write_text("type,value\nja3-fingerprint-md5,3c3d129780d0066cd8936a6291a8d44f\n")
    assert alerts_of(vigia("scan", pcap, "-i", ind).stdout) == []  # the fast path alone
    alerts = alerts_of(vigia("scan", pcap, "-i", ind, "--deep").stdout)
    assert [
        (
            a["threat"]["enrichments"][0]["matched"]["field"],
            a["event"]["count"],
            a["network"]["protocol"],
        )
        for a in alerts
    ] == [("tls.client.ja3", 2, "dtls")]
