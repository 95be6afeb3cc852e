"""Deep dissection through tshark, where re-implementing a protocol does not pay.

Today: DTLS and QUIC client hellos — server name and JA3 (QUIC's Initial
packets must be decrypted, which tshark does). It runs over capture files,
after the fast pass, and needs tshark installed (the system brings it).

tshark runs as a plain child process printing the few fields we read
(`-T fields`), waited for by us. pyshark, used before, waits for tshark
through asyncio's child watcher, which now and then lost the exit status
("Unknown child process pid", reported as a crash with code 255) and took
the whole sensor run down with it.
"""

from __future__ import annotations

import ipaddress
import logging
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from sensors.flowhash import community_id
from sensors.observation import Observation

DISPLAY_FILTER = "dtls.handshake.type == 1 or (quic and tls.handshake.type == 1)"
# The columns tshark prints, in order; the first occurrence of each (an outer
# IP header before a tunnelled one, the first hello of a packet).
FIELDS = (
    "frame.time_epoch",
    "ip.src",
    "ipv6.src",
    "ip.dst",
    "ipv6.dst",
    "udp.srcport",
    "udp.dstport",
    "dtls.handshake.ja3",
    "dtls.handshake.extensions_server_name",
    "tls.handshake.ja3",
    "tls.handshake.extensions_server_name",
)
log = logging.getLogger("vigia.sensor.deep")


class DeepUnavailable(RuntimeError):
    pass


def available() -> bool:
    return shutil.which("tshark") is not None


def observe(path: Path, observer: str) -> Iterator[Observation]:
    """One observation per DTLS or QUIC ClientHello in the file.

    A file tshark cannot read to its end (truncated, corrupt) gives what it
    could read and one warning with tshark's own reason; it never ends the run.
    """
    tshark = shutil.which("tshark")
    if tshark is None:
        raise DeepUnavailable("tshark is not installed: deep dissection is off")
    cmd = [tshark, "-n", "-r", str(path), "-Y", DISPLAY_FILTER, "-T", "fields"]
    cmd += ["-E", "separator=/t", "-E", "occurrence=f"]
    for field in FIELDS:
        cmd += ["-e", field]
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    read_all = False
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            obs = _observation(line.rstrip("\n").split("\t"), observer)
            if obs is not None:
                yield obs
        read_all = True
    finally:
        # Only a caller that stopped early gets tshark killed: once its output is
        # read to the end it is left to exit, so its reason for a cut file is kept.
        if not read_all and proc.poll() is None:
            proc.kill()
        _, err = proc.communicate()
        if proc.returncode not in (0, -9):
            reason = _reason(err)
            log.warning(
                "deep pass over %s stopped early (tshark %s): %s", path, proc.returncode, reason
            )


def _reason(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip() and "Running as user" not in ln]
    return lines[-1].strip() if lines else "no reason given"


def _observation(row: list[str], observer: str) -> Observation | None:
    if len(row) < len(FIELDS):
        return None
    ts, ip_src, ip6_src, ip_dst, ip6_dst, sport_s, dport_s = row[:7]
    dtls_ja3, dtls_sni, tls_ja3, tls_sni = row[7:11]
    src, dst = (ip_src, ip_dst) if ip_src else (ip6_src, ip6_dst)
    if not src or not dst or not sport_s or not dport_s:
        return None
    if dtls_ja3 or dtls_sni:
        protocol, ja3, sni = "dtls", dtls_ja3, dtls_sni
    else:
        protocol, ja3, sni = "quic", tls_ja3, tls_sni
    if not ja3 and not sni:
        return None  # a fragment or retransmission that carries no hello fields
    sport, dport = int(sport_s), int(dport_s)
    cid = community_id(
        17, ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed, sport, dport
    )
    obs = Observation(
        timestamp=float(ts),
        observer=observer,
        src_ip=src,
        dst_ip=dst,
        src_port=sport,
        dst_port=dport,
        transport="udp",
        community_id=cid,
        protocol=protocol,
    )
    if sni:
        obs.add("tls.client.server_name", sni.lower())
    if ja3:
        obs.add("tls.client.ja3", ja3)
    return obs
