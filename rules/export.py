"""The active indicators for sites that also run other sensors: Zeek intel, Suricata datasets.

Each format says only what it can: Zeek's Intel::DOMAIN is exact, so a MISP
`domain` (name and subdomains) is written as its name; Suricata's `ip`
datasets hold addresses, so networks are left out. What is left out is
counted, by reason, in the summary returned.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from rules.indicator import Indicator

_ZEEK_TYPES = {
    "hostname": "Intel::DOMAIN",
    "domain": "Intel::DOMAIN",
    "url": "Intel::URL",
    "md5": "Intel::FILE_HASH",
    "sha1": "Intel::FILE_HASH",
    "sha256": "Intel::FILE_HASH",
    "x509-fingerprint-sha1": "Intel::CERT_HASH",
    "email": "Intel::EMAIL",
    "email-src": "Intel::EMAIL",
    "email-dst": "Intel::EMAIL",
    "filename": "Intel::FILE_NAME",
    "user-agent": "Intel::SOFTWARE",
}


def _detection(indicators: Iterable[Indicator], summary: Counter[str]) -> list[Indicator]:
    """The indicators for detection elsewhere: a whitelisted value (Zeek's meta.whitelist,
    from any source) leaves out its whitelist entries and every indicator of that value,
    as Vigía's own matching does; the receiving sensor need not know whitelists."""
    held = list(indicators)
    allowed = {i.value for i in held if i.whitelist}
    out = []
    for ind in held:
        if ind.value in allowed:
            summary["skipped: whitelisted"] += 1
        else:
            out.append(ind)
    return out


def _clean(text: str) -> str:
    """Zeek intel fields are tab-separated, one record a line."""
    return " ".join(text.replace("\t", " ").split()) or "-"


def zeek_intel(indicators: Iterable[Indicator], out: Path) -> Counter[str]:
    summary: Counter[str] = Counter()
    lines = ["#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\tmeta.url"]
    for ind in _detection(indicators, summary):
        if not ind.to_ids:
            summary["skipped: not to_ids"] += 1
            continue
        if ind.kind == "addr":
            ztype = "Intel::SUBNET" if "/" in ind.value else "Intel::ADDR"
        elif ind.type in _ZEEK_TYPES:
            ztype = _ZEEK_TYPES[ind.type]
        else:
            summary[f"skipped: no Zeek type for {ind.type}"] += 1
            continue
        lines.append(
            "\t".join(
                [ind.value, ztype, _clean(ind.provider), _clean(ind.comment), _clean(ind.event)]
            )
        )
        summary[ztype] += 1
    out.write_text("\n".join(lines) + "\n")
    return summary


# dataset name -> (Suricata type, the MISP types it holds, how a value is written)
_DATASETS = {
    "vigia-names": ("string", ("hostname", "domain")),
    "vigia-ips": ("ip", ("ip-src", "ip-dst")),
    "vigia-md5": ("md5", ("md5",)),
    "vigia-sha1": ("sha1", ("sha1",)),
    "vigia-sha256": ("sha256", ("sha256",)),
    "vigia-ja3": ("md5", ("ja3-fingerprint-md5",)),
}
_RULES = [
    'alert dns any any -> any any (msg:"VIGIA indicator: DNS query"; dns.query; '
    "dataset:isset,vigia-names,type string,load vigia-names.lst; sid:9900001; rev:1;)",
    'alert http any any -> any any (msg:"VIGIA indicator: HTTP host"; http.host; '
    "dataset:isset,vigia-names,type string,load vigia-names.lst; sid:9900002; rev:1;)",
    'alert tls any any -> any any (msg:"VIGIA indicator: TLS SNI"; tls.sni; '
    "dataset:isset,vigia-names,type string,load vigia-names.lst; sid:9900003; rev:1;)",
    'alert ip any any -> any any (msg:"VIGIA indicator: address"; ip.dst; '
    "dataset:isset,vigia-ips,type ip,load vigia-ips.lst; sid:9900004; rev:1;)",
    'alert ip any any -> any any (msg:"VIGIA indicator: address"; ip.src; '
    "dataset:isset,vigia-ips,type ip,load vigia-ips.lst; sid:9900005; rev:1;)",
    'alert http any any -> any any (msg:"VIGIA indicator: file MD5"; filemd5:vigia-md5.lst; '
    "sid:9900006; rev:1;)",
    'alert http any any -> any any (msg:"VIGIA indicator: file SHA-256"; '
    "filesha256:vigia-sha256.lst; sid:9900007; rev:1;)",
    'alert tls any any -> any any (msg:"VIGIA indicator: JA3"; ja3.hash; '
    "dataset:isset,vigia-ja3,type md5,load vigia-ja3.lst; sid:9900008; rev:1;)",
]


def suricata_datasets(indicators: Iterable[Indicator], folder: Path) -> Counter[str]:
    """One list file per dataset, plus `vigia.rules` that loads them."""
    folder.mkdir(parents=True, exist_ok=True)
    by_type: dict[str, set[str]] = {name: set() for name in _DATASETS}
    owner = {t: name for name, (_k, types) in _DATASETS.items() for t in types}
    summary: Counter[str] = Counter()
    for ind in _detection(indicators, summary):
        name = owner.get(ind.type)
        if not ind.to_ids or name is None:
            summary[f"skipped: {ind.type}" if ind.to_ids else "skipped: not to_ids"] += 1
            continue
        if name == "vigia-ips" and "/" in ind.value:
            summary["skipped: networks (ip datasets hold addresses)"] += 1
            continue
        by_type[name].add(ind.value)
    for name, values in by_type.items():
        kind = _DATASETS[name][0]
        lines = sorted(
            base64.b64encode(v.encode()).decode() if kind == "string" else v for v in values
        )
        (folder / f"{name}.lst").write_text("".join(f"{line}\n" for line in lines))
        summary[name] = len(lines)
    (folder / "vigia.rules").write_text("\n".join(_RULES) + "\n")
    return summary
