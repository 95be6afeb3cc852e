"""Unit tests of the sensor engine and its reporter, on small factory-built conversations
(tests.factories.Conversation, as mitmproxy's tflow): how a flow finds its analyzer
(the detection table), what the engine hands an analyzer and when, a flow's states,
and what the Reporter makes of a file. The scenario tests (test_decode, test_extract_zeek,
test_sensor_claims...) run the same engine over real captures."""

from __future__ import annotations

import hashlib
from typing import ClassVar

from sensors import decode as dec
from sensors.analyzer import AnalyzerError, Endpoints, FlowState, Row
from sensors.engine import SensorConfig
from sensors.extract import ftp
from sensors.flow import Counters
from sensors.observation import Observation
from sensors.prefilter import PreFilter
from sensors.protocols import PROTOCOLS
from sensors.report import MAX_EXPECTED, Reporter
from tests.factories import Conversation, SensorRun, endpoints

# -- a protocol of the tests' own: one class and one table row -------------------------


class EchoError(AnalyzerError):
    pass


class Echo:
    """A plain-Python analyzer (not compiled, not inheriting): it logs what the engine
    hands it and reports each line the client sends as a file name."""

    instances: ClassVar[list[Echo]] = []  # every one made, in order

    def __init__(self, ends: Endpoints, report: Reporter) -> None:
        self.ends, self.report = ends, report
        self.log: list[tuple[str, object]] = []
        Echo.instances.append(self)

    def feed(self, from_originator: bool, data: bytes, ts: float) -> bool:
        self.log.append(("feed", (from_originator, data)))
        if data.startswith(b"BAD"):
            raise EchoError("bad line")
        if from_originator:
            obs = self.report.obs(self.ends, ts, "echo")
            for line in data.split():
                obs.add("file.name", line.decode())
            self.report.emit(obs)
        return not data.startswith(b"BYE")

    def end(self, from_originator: bool, reset: bool, ts: float) -> None:
        self.log.append(("end", (from_originator, reset)))

    def close(self, ts: float) -> None:
        self.log.append(("close", None))


def _echo_sniff(data: bytes) -> bool:
    return data.startswith(b"ECHO")


ECHO_BY_PORT = Row("echo", Echo, ports=frozenset({7}))
ECHO_BY_BYTES = Row("echo", Echo, sniff=_echo_sniff)


def _run(*rows: Row, **kwargs: object) -> SensorRun:
    Echo.instances.clear()
    return SensorRun(protocols=(*rows, *PROTOCOLS), **kwargs)


def test_a_row_by_port_gets_the_flow_at_its_start_and_each_direction_in_order() -> None:
    talk = Conversation(dport=7).handshake()
    run = _run(ECHO_BY_PORT).feed(talk, finish=False)
    (flow,) = run.sensor.flows.values()
    assert flow.state is FlowState.ANALYZING and flow.app == "echo"  # before any byte
    # the server's segment first, then the client's two out of order: reassembled
    talk.frames.clear()
    talk.reply(b"hello\n")
    first, second = talk.send(b"one\n").frames[-1], talk.send(b"two\n").frames[-1]
    talk.frames[-2:] = [second, first]
    run.feed(talk.close())
    (echo,) = Echo.instances
    assert echo.log == [
        ("feed", (False, b"hello\n")),
        ("feed", (True, b"one\ntwo\n")),  # held until the gap filled
        ("end", (True, False)),  # the client's FIN, then the server's
        ("end", (False, False)),
        ("close", None),  # once, when closed both ways
    ]
    assert [v["file.name"] for v in run.values("echo")] == [["one", "two"]]
    assert flow.state is FlowState.DONE and flow.analyzer is None and flow.streams is None


def test_a_row_by_first_bytes_is_tried_on_the_clients_first_data_only() -> None:
    talk = Conversation(dport=9999).handshake().reply(b"ECHO from the server\n")
    run = _run(ECHO_BY_BYTES).feed(talk, finish=False)
    (flow,) = run.sensor.flows.values()
    assert flow.state is FlowState.NEW and Echo.instances == []  # the responder spoke first
    run.feed(Conversation(dport=9999).handshake().send(b"ECHO hi\n"), finish=False)
    assert [e.log for e in Echo.instances] == [[("feed", (True, b"ECHO hi\n"))]]
    other = Conversation(sport=40001, dport=9999).handshake().send(b"nothing known\n")
    run.feed(other, finish=False)
    unknown = [f for f in run.sensor.flows.values() if f.ends.sport == 40001]
    assert [f.state for f in unknown] == [FlowState.DONE]  # no row knew it: retired
    assert len(Echo.instances) == 1


def test_the_first_row_that_knows_the_bytes_wins() -> None:
    # An HTTP request to port 7: the port row wins over HTTP's sniffer.
    talk = Conversation(dport=7).handshake().send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    run = _run(ECHO_BY_PORT).feed(talk.close())
    assert run.values("http") == [] and len(Echo.instances) == 1
    # Rows are tried in order: a sniffer placed before HTTP's takes an HTTP request.
    greedy = Row("greedy", Echo, sniff=lambda data: True)
    run = _run(greedy).feed(Conversation().handshake().send(b"GET / HTTP/1.1\r\n\r\n").close())
    assert run.values("http") == [] and len(Echo.instances) == 1


def test_an_analyzer_error_is_counted_under_its_row_and_retires_the_flow() -> None:
    talk = Conversation(dport=7).handshake().send(b"BAD\n").send(b"after\n")
    run = _run(ECHO_BY_PORT).feed(talk, finish=False)
    assert run.sensor.counters.protocol_errors == {"echo: bad line": 1}
    (flow,) = run.sensor.flows.values()
    assert flow.state is FlowState.DONE and flow.analyzer is None
    assert [entry[0] for entry in Echo.instances[0].log] == ["feed"]  # nothing after


def test_an_analyzer_that_wants_no_more_retires_the_flow() -> None:
    talk = Conversation(dport=7).handshake().send(b"BYE\n").send(b"later\n")
    run = _run(ECHO_BY_PORT).feed(talk.close())
    assert Echo.instances[0].log == [("feed", (True, b"BYE\n"))]  # not closed: retired
    assert run.values("echo") == [{"file.name": ["BYE"]}]


def test_a_reset_ends_both_directions() -> None:
    talk = Conversation(dport=7).handshake().send(b"x\n").reset(from_client=False)
    _run(ECHO_BY_PORT).feed(talk)
    assert Echo.instances[0].log[-2:] == [("end", (False, True)), ("close", None)]


def test_udp_rows_match_either_port_and_can_turn_the_flow_round() -> None:
    def replies_first(pkt: dec.Packet) -> bool:
        return pkt.payload.startswith(b"REPLY")

    row = Row(
        "echo",
        Echo,
        ports=frozenset({7}),
        transports=frozenset({dec.PROTO_UDP}),
        replies_first=replies_first,
    )
    # A reply seen alone, from port 7: its receiver is the flow's originator.
    talk = Conversation(client="10.0.0.9", sport=7, dport=5555, udp=True).send(b"REPLY x\n")
    run = _run(row).feed(talk)
    (obs,) = [o for o in run.observations if o.is_connection]
    assert (obs.src_ip, obs.src_port, obs.dst_port) == ("10.0.0.2", 5555, 7)
    assert Echo.instances[0].log[0] == ("feed", (False, b"REPLY x\n"))
    # over TCP the row does not apply: nothing claims port 7
    run = _run(row).feed(Conversation(dport=7).handshake().send(b"x\n").close())
    assert Echo.instances == []


def test_a_connection_an_analyzer_announced_gets_its_analyzer_once() -> None:
    run = _run()
    run.sensor.report.expect("echo", "10.0.0.2", 2020, Echo)
    first, second = (Conversation(sport=s, dport=2020).handshake().send(b"x\n") for s in (1, 2))
    run.feed(first, second)
    assert len(Echo.instances) == 1 and run.sensor.report.expected == {}


def test_the_reporter_forgets_the_oldest_expected_connection() -> None:
    report = Reporter(SensorConfig(), Counters(), lambda o: None)
    for port in range(MAX_EXPECTED + 2):
        report.expect("echo", "10.0.0.2", port, Echo)
    assert len(report.expected) == MAX_EXPECTED + 1
    assert ("10.0.0.2", 0) not in report.expected and (
        "10.0.0.2",
        MAX_EXPECTED + 1,
    ) in report.expected


def test_a_flow_left_out_by_the_prefilter_is_skipped_and_counted_per_packet() -> None:
    talk = Conversation(dport=7).handshake().send(b"x\n")
    run = _run(ECHO_BY_PORT, prefilter=PreFilter(networks=("10.0.0.0/24",)))
    run.feed(talk, finish=False)
    (flow,) = run.sensor.flows.values()
    assert flow.state is FlowState.SKIPPED and flow.skip_reason == "allowlisted_network"
    assert Echo.instances == [] and run.observations == []
    assert run.sensor.counters.filtered == {"allowlisted_network": 4}  # each of its packets


def test_a_udp_flow_no_row_claims_is_done_from_the_start() -> None:
    run = SensorRun().feed(Conversation(dport=9, udp=True).send(b"x"), finish=False)
    assert [f.state for f in run.sensor.flows.values()] == [FlowState.DONE]
    assert [o.transport for o in run.observations] == ["udp"]  # its flow record, still


# -- FTP, the protocol moved to the pattern: a control connection announces its data ---


def test_ftp_data_connection_announced_by_pasv_is_a_named_file() -> None:
    control = (
        Conversation(dport=21)
        .handshake()
        .reply(b"220 ready\r\n")
        .send(b"PASV\r\n")
        .reply(b"227 Entering Passive Mode (10,0,0,2,39,16).\r\n")  # port 10000
        .send(b"RETR /pub/report.pdf\r\n")
    )
    data = Conversation(sport=40002, dport=10000).handshake().reply(b"%PDF-1.7 ...").close()
    run = SensorRun().feed(control, data)
    (values,) = run.values("ftp-data")
    assert values["file.name"] == ["report.pdf"]
    assert values["file.hash.sha256"] == [hashlib.sha256(b"%PDF-1.7 ...").hexdigest()]
    assert run.contents == [("ftp.data", b"%PDF-1.7 ...")]


def test_ftp_listing_is_not_a_file() -> None:
    control = (
        Conversation(dport=21)
        .handshake()
        .send(b"EPSV\r\n")
        .reply(b"229 Entering Extended Passive Mode (|||10001|)\r\n")
        .send(b"LIST\r\n")
    )
    data = Conversation(sport=40003, dport=10001).handshake().reply(b"-rw-r--r-- a\r\n").close()
    run = SensorRun().feed(control, data)
    assert run.values("ftp-data") == [] and run.contents == []


def test_ftp_data_analyzer_alone() -> None:
    """The analyzer without the engine: bytes either way up to max_body, one file at the
    first end, nothing after."""
    found: list[Observation] = []
    report = Reporter(SensorConfig(max_body=4), Counters(), found.append)
    session = ftp.FtpControl("10.0.0.1", "10.0.0.2")
    session.feed(True, b"STOR up.bin\r\n")
    analyzer = ftp.DataConnection(session)(endpoints(dport=10002), report)
    assert analyzer.feed(True, b"abc", 1.0) and analyzer.feed(False, b"def", 1.0)
    analyzer.end(True, False, 2.0)
    analyzer.feed(True, b"more", 3.0)
    analyzer.close(4.0)
    (obs,) = found
    assert obs.values["file.name"] == ["up.bin"] and obs.values["file.size"] == ["4"]
    assert obs.timestamp == 2.0 and obs.protocol == "ftp-data"


# -- HTTP: a close delimits a body ------------------------------------------------------


def test_http_half_close_ends_only_its_direction() -> None:
    talk = (
        Conversation()
        .handshake()
        .send(b"GET /a.txt HTTP/1.1\r\nHost: h\r\n\r\n")
        .fin(True)  # the client is done sending, and still reads
        .reply(b"HTTP/1.1 200 OK\r\n\r\nbody until close")
    )
    run = SensorRun().feed(talk, finish=False)
    assert run.contents == []  # the response runs to the server's close
    run.feed(talk.fin(False), finish=False)
    assert run.contents == [("http.response.body", b"body until close")]


# -- the Reporter -----------------------------------------------------------------------


def test_reporter_file_names_types_hashes_and_hands_the_bytes_on() -> None:
    found: list[Observation] = []
    handed: list[tuple[str, bytes, Observation]] = []
    report = Reporter(
        SensorConfig(observer="s1"),
        Counters(),
        found.append,
        lambda c: handed.append((c.source, c.data, c.observation)),
    )
    report.file(endpoints(), 5.0, "http", b"MZ\x90", "C:\\tmp\\a.exe", "x.body", "app/x")
    (obs,) = found
    assert obs.observer == "s1" and obs.protocol == "http" and obs.timestamp == 5.0
    assert obs.values["file.name"] == ["a.exe"] and obs.values["file.path"] == ["C:\\tmp\\a.exe"]
    assert obs.values["file.mime_type"] == ["app/x"] and obs.values["file.size"] == ["3"]
    assert obs.values["file.hash.md5"] == [hashlib.md5(b"MZ\x90").hexdigest()]
    assert handed == [("x.body", b"MZ\x90", obs)] and report.counters.contents == 1


def test_reporter_drops_what_the_prefilter_drops_and_counts_why() -> None:
    found: list[Observation] = []
    report = Reporter(
        SensorConfig(), Counters(), found.append, prefilter=PreFilter(domains=("trusted.example",))
    )
    kept, dropped = (report.obs(endpoints(), 1.0, "dns") for _ in range(2))
    kept.add("dns.question.name", "evil.example")
    dropped.add("dns.question.name", "www.trusted.example")
    report.emit(kept)
    report.emit(dropped)
    assert found == [kept] and report.counters.observations == 1
    assert sum(report.counters.filtered.values()) == 1


def test_reporter_observation_of_icmp_has_no_ports() -> None:
    report = Reporter(SensorConfig(), Counters(), lambda o: None)
    obs = report.obs(endpoints(proto=dec.PROTO_ICMP, sport=8, dport=0), 1.0, None)
    assert (obs.src_port, obs.dst_port, obs.transport) == (None, None, "icmp")
    obs = report.obs(endpoints(proto=dec.PROTO_UDP, sport=1, dport=53), 1.0, None)
    assert (obs.src_port, obs.dst_port, obs.transport) == (1, 53, "udp")
