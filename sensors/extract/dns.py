"""DNS messages (RFC 1035) over UDP, or TCP with the 2-byte length prefix: the
question names and answers, as observations (DnsAnalyzer)."""

from __future__ import annotations

from typing import NamedTuple

from sensors import decode as dec
from sensors.analyzer import Analyzer, AnalyzerError, Endpoints
from sensors.decode import address_text
from sensors.report import Reporter

DNS_PORTS: frozenset[int] = frozenset({53, 5353, 5355})  # DNS, mDNS, LLMNR: Zeek logs all three
_TYPE_A, _TYPE_NS, _TYPE_CNAME, _TYPE_PTR, _TYPE_MX, _TYPE_TXT, _TYPE_AAAA = 1, 2, 5, 12, 15, 16, 28
_NAME_TYPES = frozenset({_TYPE_NS, _TYPE_CNAME, _TYPE_PTR})
_MAX_RECORDS = 256


class DnsError(AnalyzerError):
    pass


class DnsMessage(NamedTuple):
    trans_id: int
    is_response: bool
    questions: list[str]
    answers: list[str]
    owners: list[str]  # answer owner names: mDNS announcements carry no question


def _name(buf: bytes, pos: int) -> tuple[str, int]:
    """Read a (possibly compressed) name; return it and the position after it."""
    labels: list[str] = []
    end = -1
    jumps = 0
    while True:
        if pos >= len(buf):
            raise DnsError("name runs past the message")
        ln = buf[pos]
        if ln & 0xC0 == 0xC0:
            if pos + 1 >= len(buf):
                raise DnsError("truncated pointer")
            if end < 0:
                end = pos + 2
            jumps += 1
            if jumps > 64:  # pointer loops in hostile packets
                raise DnsError("compression loop")
            pos = ((ln & 0x3F) << 8) | buf[pos + 1]
            continue
        if ln & 0xC0:
            raise DnsError("bad label type")
        pos += 1
        if ln == 0:
            break
        if pos + ln > len(buf):
            raise DnsError("label runs past the message")
        labels.append(buf[pos : pos + ln].decode("ascii", "backslashreplace"))
        pos += ln
        if len(labels) > 128:
            raise DnsError("too many labels")
    return ".".join(labels), (end if end >= 0 else pos)


def parse(buf: bytes) -> DnsMessage:
    if len(buf) < 12:
        raise DnsError("shorter than a DNS header")
    trans_id = int.from_bytes(buf[0:2])
    flags = int.from_bytes(buf[2:4])
    qd, an = int.from_bytes(buf[4:6]), int.from_bytes(buf[6:8])
    if qd > _MAX_RECORDS or an > _MAX_RECORDS:
        raise DnsError("implausible record counts")
    pos = 12
    questions = []
    for _ in range(qd):
        name, pos = _name(buf, pos)
        pos += 4
        if pos > len(buf):
            raise DnsError("truncated question")
        questions.append(name)
    answers: list[str] = []
    owners: list[str] = []
    for _ in range(an):
        owner, pos = _name(buf, pos)
        if owner not in owners:
            owners.append(owner)
        if pos + 10 > len(buf):
            break  # truncated answer section: keep what we have
        rtype = int.from_bytes(buf[pos : pos + 2])
        rdlen = int.from_bytes(buf[pos + 8 : pos + 10])
        rdata_at = pos + 10
        pos = rdata_at + rdlen
        if pos > len(buf):
            break
        value = _rdata(buf, rtype, rdata_at, rdlen)
        if value is not None:
            answers.append(value)
    return DnsMessage(trans_id, bool(flags & 0x8000), questions, answers, owners)


def _rdata(buf: bytes, rtype: int, at: int, length: int) -> str | None:
    if rtype == _TYPE_A and length == 4:
        return address_text(buf[at : at + 4])
    if rtype == _TYPE_AAAA and length == 16:
        return address_text(buf[at : at + 16])
    if rtype in _NAME_TYPES:
        return _name(buf, at)[0]
    if rtype == _TYPE_MX and length > 2:
        return _name(buf, at + 2)[0]
    if rtype == _TYPE_TXT:
        parts, p, stop = [], at, at + length
        while p < stop:
            n = buf[p]
            parts.append(buf[p + 1 : min(p + 1 + n, stop)].decode("utf-8", "backslashreplace"))
            p += 1 + n
        return "TXT " + " ".join(parts)
    return None


def split_tcp(buf: bytes) -> tuple[list[bytes], bytes]:
    """Split a TCP DNS stream into messages; return them and the unfinished rest."""
    msgs = []
    while len(buf) >= 2:
        n = int.from_bytes(buf[:2])
        if len(buf) < 2 + n:
            break
        msgs.append(buf[2 : 2 + n])
        buf = buf[2 + n :]
    return msgs, buf


def replies_first(pkt: dec.Packet) -> bool:
    """A datagram from a DNS port seen first: its receiver asked (Zeek turns the flow
    likewise), unless it went to a multicast group (mDNS announcements)."""
    multicast = pkt.dst[0] == 0xFF if len(pkt.dst) == 16 else 224 <= pkt.dst[0] <= 239
    return not multicast and len(pkt.payload) > 2 and bool(pkt.payload[2] & 0x80)


class DnsAnalyzer(Analyzer):
    """Each query's names, each response's answers (and its names, when the query
    went unseen)."""

    def __init__(self, ends: Endpoints, report: Reporter) -> None:
        self.ends, self.report = ends, report
        self.tcp = ends.is_tcp
        self.bufs: list[bytes] | None = None  # TCP: each direction's unfinished message
        self.seen: set[int] = set()  # transaction ids whose query we observed

    def feed(self, from_originator: bool, data: bytes, ts: float) -> bool:
        if not self.tcp:
            self.message(data, ts)
            return True
        if self.bufs is None:
            self.bufs = [b"", b""]
        i = 0 if from_originator else 1
        msgs, self.bufs[i] = split_tcp(self.bufs[i] + data)
        for m in msgs:
            self.message(m, ts)
        return True

    def end(self, from_originator: bool, reset: bool, ts: float) -> None:
        pass

    def close(self, ts: float) -> None:
        pass

    def message(self, payload: bytes, ts: float) -> None:
        msg = parse(payload)
        obs = self.report.obs(self.ends, ts, "dns")
        seen = self.seen
        if not msg.is_response:
            seen.add(msg.trans_id)
            for q in msg.questions:
                obs.add("dns.question.name", q.lower())
        else:
            if msg.trans_id not in seen:  # the query went unseen: name it once here
                # (an mDNS announcement has no question: its answers' owners stand in, as in Zeek)
                for q in msg.questions or msg.owners[:1]:
                    obs.add("dns.question.name", q.lower())
            seen.discard(msg.trans_id)
            for ans in msg.answers:
                obs.add("dns.answers.data", ans if ans.startswith("TXT ") else ans.lower())
        if obs.values:
            self.report.emit(obs)
