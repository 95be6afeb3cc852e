"""yara-python's own (rule, data, verdict) cases through Vigía's YARA path:
rule files validated and compiled as a pack, content scanned by the matcher."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from correlator.index import IndicatorIndex
from correlator.matcher import Matcher
from rules.yarapack import YaraPackError, compile_pack
from sensors.engine import Content
from sensors.observation import Observation
from tests.conftest import corpus


def _cases() -> list[dict[str, object]]:
    folder = corpus("yara", "yara-python-tests")
    rows = [json.loads(line) for line in (folder / "cases.jsonl").read_text().splitlines()]
    return [r for r in rows if "requires_config" not in r]


def _content(data: bytes) -> Content:
    obs = Observation(0.0, "t", "10.0.0.1", "10.0.0.2", 1, 2, "tcp", "1:x", "http")
    obs.add("file.hash.sha256", "0" * 64)
    return Content(obs, data, "http.response.body")


def test_yara_python_cases_give_their_verdicts(tmp_path: Path) -> None:
    cases = _cases()
    assert len(cases) > 300
    samples = corpus("yara", "yara-python-tests", "samples")
    wrong = []
    for n, case in enumerate(cases):
        folder = tmp_path / f"case{n}"
        folder.mkdir()
        (folder / "rule.yar").write_text(str(case["rule"]))
        try:
            pack = compile_pack([folder])
        except YaraPackError as exc:
            if case["expect"] != "syntax_error":
                wrong.append((n, case["expect"], f"refused: {exc}"))
            elif not str(exc).startswith(str(folder / "rule.yar")):
                wrong.append((n, "error names the file", str(exc)))
            continue
        if case["expect"] == "syntax_error":
            wrong.append((n, "syntax_error", "compiled"))
            continue
        if "data_sample" in case:
            data = (samples / Path(str(case["data_sample"])).name).read_bytes()
        else:
            data = base64.b64decode(str(case.get("data_b64", "")))
        hits = Matcher(IndicatorIndex(), pack).scan(_content(data))
        verdict = "match" if hits else "nomatch"
        if verdict != case["expect"]:
            wrong.append((n, case["expect"], verdict))
    assert wrong == []


@pytest.mark.parametrize("bad", ["rule x { condition: $a }", "rule { }"])
def test_bad_pack_names_file_and_line(tmp_path: Path, bad: str) -> None:
    (tmp_path / "ok.yar").write_text("rule ok { condition: true }\n")
    (tmp_path / "bad.yar").write_text("\n\n" + bad + "\n")
    with pytest.raises(YaraPackError, match=r"bad\.yar:3: "):
        compile_pack([tmp_path])


def test_shipped_pack_finds_eicar_and_a_webshell_in_http_bodies(tmp_path: Path) -> None:
    import subprocess
    import sys

    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    eicar = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
    shell = b"<?php @eval(base64_decode($_POST['x'])); ?>"
    pkts = []
    for n, body in enumerate((eicar, shell, b"<html>nothing here</html>")):
        c, port = f"10.4.0.{n + 1}", 41000 + n
        req = f"POST /up{n} HTTP/1.1\r\nHost: portal.gob.example\r\n".encode()
        req += b"Content-Length: %d\r\n\r\n" % len(body) + body
        pkts += [
            Ether() / IP(src=c, dst="10.4.0.100") / TCP(sport=port, dport=80, flags="S", seq=0),
            Ether()
            / IP(src=c, dst="10.4.0.100")
            / TCP(sport=port, dport=80, flags="PA", seq=1)
            / req,
        ]
    pcap = tmp_path / "uploads.pcap"
    wrpcap(str(pcap), pkts)
    packs = Path(__file__).resolve().parent.parent / "rules" / "packs"
    r = subprocess.run(
        [sys.executable, "-m", "vigia", "scan", str(pcap), "--yara", str(packs)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    alerts = [json.loads(x) for x in r.stdout.splitlines()]
    assert sorted((a["rule"]["name"], a["source"]["ip"]) for a in alerts) == [
        ("eicar_test_file", "10.4.0.1"),
        ("php_webshell_eval_input", "10.4.0.2"),
    ]


def test_rules_check_command(tmp_path: Path) -> None:
    import subprocess
    import sys

    ok = subprocess.run(
        [sys.executable, "-m", "vigia", "rules", "check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0 and "eicar_test_file" in ok.stdout
    (tmp_path / "bad.yar").write_text("rule bad {\n condition: $x\n}\n")
    bad = subprocess.run(
        [sys.executable, "-m", "vigia", "rules", "check", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "bad.yar:" in bad.stderr and "Traceback" not in bad.stderr


def test_misp_yara_attributes_and_externals_in_a_scan(tmp_path: Path) -> None:
    import subprocess
    import sys

    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    pkts = []
    bodies = [
        ("/shell.php", b"<?php echo 'hola'; ?>"),
        ("/notes.txt", b"<?php echo 'hola'; ?>"),
        ("/x.bin", b"MISP-SHARED-MARKER-77"),
    ]
    for n, (uri, body) in enumerate(bodies):
        c, port = f"10.5.0.{n + 1}", 42000 + n
        # PUT: the URI names the body (a POST's names the program that takes it)
        req = f"PUT {uri} HTTP/1.1\r\nHost: h.example\r\nContent-Length: {len(body)}\r\n\r\n"
        pkts += [
            Ether() / IP(src=c, dst="10.5.0.100") / TCP(sport=port, dport=80, flags="S"),
            Ether()
            / IP(src=c, dst="10.5.0.100")
            / TCP(sport=port, dport=80, flags="PA", seq=1)
            / (req.encode() + body),
        ]
    pcap = tmp_path / "posts.pcap"
    wrpcap(str(pcap), pkts)
    event = {
        "Event": {
            "info": "rules shared over MISP",
            "uuid": "ev-1",
            "Attribute": [
                {
                    "type": "yara",
                    "to_ids": True,
                    "uuid": "a1",
                    "value": 'rule shared_marker { strings: $m = "MISP-SHARED-MARKER" '
                    "condition: $m }",
                },
                {
                    "type": "yara",
                    "to_ids": False,
                    "uuid": "a2",
                    "value": "rule not_for_ids { condition: true }",
                },
            ],
        }
    }
    ev = tmp_path / "event.json"
    ev.write_text(json.dumps(event))
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "php.yar").write_text(  # uses the `filename` external Vigía provides
        'rule php_upload { strings: $p = "<?php" condition: $p and filename matches /\\.php$/ }'
    )
    r = subprocess.run(
        [sys.executable, "-m", "vigia", "scan", str(pcap), "-i", str(ev), "--yara", str(rules)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    got = sorted(
        (a["rule"]["name"], a["source"]["ip"]) for a in map(json.loads, r.stdout.splitlines())
    )
    assert got == [("php_upload", "10.5.0.1"), ("shared_marker", "10.5.0.3")]
    bad = {
        "Event": {
            "info": "x",
            "Attribute": [
                {
                    "type": "yara",
                    "to_ids": True,
                    "uuid": "b1",
                    "value": "rule broken { condition: $z }",
                }
            ],
        }
    }
    ev.write_text(json.dumps(bad))
    r = subprocess.run(
        [sys.executable, "-m", "vigia", "scan", str(pcap), "-i", str(ev)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "misp-b1:1:" in r.stderr
