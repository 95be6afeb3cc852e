"""Regenerate incidents/reports/vocab/shadowserver.json from Shadowserver's published
report schema (the The-Shadowserver-Foundation/report_schema repository).

    python scripts/shadowserver_vocab.py CHECKOUT [COMMIT]

CHECKOUT holds reports.json, intelmq.json and severity.md. What we keep is our own
structure: per report type its English name, RSIT class/type, default severity,
layout (which column is the affected host) and the family of advice it gets; the
column → ECS mapping per layout is ours and written below.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "incidents" / "reports" / "vocab" / "shadowserver.json"

# RSIT types as MISP's taxonomy has them (the schema uses a few IntelMQ-only names).
RSIT_FIX = {("other", "blocklist"): ("other", "other")}

AMPLIFIERS = {
    "chargen", "qotd", "ntp", "ntpmonitor", "dns", "snmp", "ssdp", "memcached", "ldap_udp",
    "mdns", "portmapper", "ws_discovery", "netbios", "tftp", "coap", "ard", "xdmcp", "slp",
    "ddos_middlebox", "loop_dos", "dvr_dhcpdiscover", "ubiquiti", "nat_pmp", "rdpeudp",
}  # fmt: skip

# Columns shared by the report layouts, mapped to ECS fields (ours; host = the
# column that names the constituency's affected host).
LAYOUTS = {
    "scan": {
        "host": "ip",
        "name": "hostname",
        "columns": {
            "timestamp": "@timestamp",
            "ip": "destination.ip",
            "port": "destination.port",
            "protocol": "network.transport",
            "hostname": "destination.domain",
            "asn": "destination.as.number",
            "geo": "destination.geo.country_iso_code",
            "region": "destination.geo.region_name",
            "city": "destination.geo.city_name",
            "tag": "tags",
            "severity": "event.severity_name",
            "url": "url.original",
            "http_host": "url.domain",
            "infection": "threat.software.name",
            "family": "threat.software.name",
            "detail": "message",
        },
    },
    "event": {
        "host": "src_ip",
        "name": "src_hostname",
        "columns": {
            "timestamp": "@timestamp",
            "src_ip": "source.ip",
            "src_port": "source.port",
            "src_hostname": "source.domain",
            "src_asn": "source.as.number",
            "src_geo": "source.geo.country_iso_code",
            "dst_ip": "destination.ip",
            "dst_port": "destination.port",
            "dst_hostname": "destination.domain",
            "protocol": "network.transport",
            "infection": "threat.software.name",
            "family": "threat.software.alias",
            "tag": "tags",
            "severity": "event.severity_name",
            "http_host": "url.domain",
            "http_url": "url.path",
            "url": "url.original",
        },
    },
}


def family(report: str, rsit: tuple[str, str], layout: str) -> str:
    """Which advice a report type gets (incidents/reports/vocab/advice_es.json)."""
    cls, typ = rsit
    base = re.sub(r"^scan6?_", "", report)
    if (report.startswith("event") and "honeypot" in report) or cls == "information-gathering":
        return "attacker"
    if cls in ("malicious-code", "intrusions") or report.startswith("compromised"):
        return "compromised"
    if cls == "availability" or report.startswith("event4_ddos"):
        return "ddos"
    if report.startswith("scan") and base in AMPLIFIERS:
        return "amplifier"
    if (
        report.endswith("_vulnerable")
        or typ == "weak-crypto"
        or base in ("exchange", "badsecrets", "synfulknock", "post_exploitation_framework")
        or report == "special"
    ):
        return "vulnerable_service"
    if report.startswith(("scan", "population")) and cls == "vulnerable":
        return "exposed_service"
    if cls in ("abusive-content", "fraud", "information-content-security") or report == "blocklist":
        return "abuse"
    return "informative"


def severities(md: str) -> dict[str, str]:
    out = {}
    for m in re.finditer(
        r"^\|\s*([a-z0-9_]+)\s*\|[^|]*\|\s*(critical|high|medium|low|info)\s*\|", md, re.M
    ):
        out[m.group(1)] = m.group(2)
    return out


def main(checkout: Path, commit: str) -> None:
    reports = json.loads((checkout / "reports.json").read_text())
    intelmq = json.loads((checkout / "intelmq.json").read_text())
    by_file = {
        v["file_name"]: v for v in intelmq.values() if isinstance(v, dict) and "file_name" in v
    }
    sev = severities((checkout / "severity.md").read_text())
    out: dict[str, dict[str, object]] = {}
    for name, spec in sorted(reports.items()):
        fields = spec["fields"]
        cls, typ = spec.get("classification.taxonomy"), spec.get("classification.type")
        if not cls:
            const = by_file.get(name, {}).get("constant_fields", {})
            cls, typ = const.get("classification.taxonomy"), const.get("classification.type")
        if not cls:
            sibling = reports.get(name.replace("6_", "_").replace("6", "4", 1), {})
            cls, typ = sibling.get("classification.taxonomy"), sibling.get("classification.type")
        cls, typ = RSIT_FIX.get((cls, typ), (cls or "other", typ or "undetermined"))
        layout = "event" if "src_ip" in fields else "scan"
        level = (
            sev.get(name)
            or sev.get(name.replace("6_", "_").replace("event6", "event4"))
            or "medium"
        )
        out[name] = {
            "name": spec["name"],
            "rsit": [cls, typ],
            "severity": level,
            "layout": layout,
            "family": family(name, (cls, typ), layout),
        }
    doc = {
        "_doc": (
            "Shadowserver report types, our structure: from the published report schema "
            "(The-Shadowserver-Foundation/report_schema) by scripts/shadowserver_vocab.py. "
            "The report type comes from the file name (YYYY-MM-DD-TYPE-….csv); 'layout' says "
            "which column is the constituency's host; 'family' picks the advice."
        ),
        "_source": f"The-Shadowserver-Foundation/report_schema@{commit}",
        "layouts": LAYOUTS,
        "reports": out,
    }
    OUT.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(out)} report types → {OUT}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "unknown")
