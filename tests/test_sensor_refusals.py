"""A sensor the centre refuses: set aside with the reason, never blocking, never silent.

Real centres on loopback and `vigia sensor run` as a subprocess over the Zeek
traces; the live sensor's side (keeps capturing, reminds every minute) with a
real HTTP server that refuses everything and a clock the test moves.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from core.tokens import Role
from sensors.capture import pcap_files
from sensors.config import SensorSettings
from sensors.runner import SensorService
from sensors.ship import REMIND_S, Refusal, Shipper
from sensors.spool import Spool
from tests.centre import Centre, free_port
from tests.conftest import bearer, make_token
from tests.test_sensor_ship import _count, _obs, _stored, _traces
from vigia.wiring import Services

MISMATCH_LINE = "vigia: the token is bound to sensor 's1': run with --observer s1"
TOKEN_LINE = (
    "vigia: the centre refuses the token (invalid or revoked token): give a valid sensor "
    "token with --token-file (vigia token create --role sensor --name NAME)"
)


def _run(*args: str, command: str = "run") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vigia", "sensor", command, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _summary(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("sensor ")]
    assert len(lines) == 1, err
    return lines[0]


def _number(summary: str, what: str) -> int:
    """The count before `what` in the summary line ("136 packets" -> 136)."""
    return int(summary.split(f" {what}")[0].rsplit(" ", 1)[1])


def _config(tmp_path: Path, **values: object) -> Path:
    cfg = tmp_path / "sensor.toml"
    cfg.write_text("[sensor]\n" + "".join(f"{k} = {v!r}\n" for k, v in values.items()))
    return cfg


def _token_file(tmp_path: Path, token: str) -> Path:
    f = tmp_path / "token"
    f.write_text(token + "\n")
    return f


# -- a run over files, against a real centre --------------------------------


def test_observer_mismatch_stops_the_run_with_the_fix_and_blocks_nothing(
    tmp_path: Path, services: Services
) -> None:
    traces = _traces()
    token_file = _token_file(tmp_path, make_token(services, Role.SENSOR, name="s1"))
    # small batches, each chunk flushed and sent: the refusal comes with the first file
    cfg = _config(tmp_path, batch_size=10, flush_s=0.0)
    spool = tmp_path / "spool"
    analyst = make_token(services, Role.ANALYST)
    port = free_port()
    with Centre(services, port) as centre:
        common = ["--config", str(cfg), "--server", centre.url, "--token-file", str(token_file)]
        pcaps = ["--pcap", *(str(t) for t in traces)]
        p = _run(*pcaps, *common, "--spool-dir", str(spool))  # no --observer s1
        fleet = httpx.get(f"{centre.url}/api/v1/sensors", headers=bearer(analyst)).json()
        assert p.returncode == 1, p.stderr
        assert p.stderr.splitlines()[-1] == MISMATCH_LINE
        assert "Traceback" not in p.stderr
        summary = _summary(p.stderr)
        assert "0 shipped, 0 batches spooled" in summary
        refused = sorted((spool / "batches").glob("*.refused"))
        assert _number(summary, "refused") == len(refused) > 1
        assert _number(summary, "send failures") == len(refused)
        assert "(last: batch: 4" in summary and "'s1'" in summary
        # it stopped at the first refusal: the later files were never read
        assert _number(summary, "packets") < _count(traces)[0]
        assert p.stderr.count("the centre refused a batch") == 1  # once per cause
        for f in refused:  # each set aside with the centre's reason beside it
            reason = f.with_name(f.name.removesuffix(".refused") + ".reason").read_text()
            assert reason.startswith(("403 ", "422 ")) and "'s1'" in reason
        assert _stored(services) == (0, 0)
        # The heartbeat went as the bound name: the fleet shows who is refused, and why.
        assert [s["name"] for s in fleet] == ["s1"]
        assert fleet[0]["counters"]["batches_refused"] == len(refused)
        assert fleet[0]["last_refusal"].startswith(("403 ", "422 "))
        assert "'s1'" in fleet[0]["last_refusal"]

        # Fixed: the same spool, the right name. The refused batches block nothing.
        ours = [*common, "--spool-dir", str(spool), "--observer", "s1"]
        p = _run("--pcap", str(traces[1]), *ours)
        assert p.returncode == 0, p.stderr
        summary = _summary(p.stderr)
        shipped = _number(summary, "shipped")
        assert shipped == _count(traces[1:2])[1] > 0
        assert "0 batches spooled, 0 refused, 0 send failures" in summary
        assert "(last:" not in summary
        assert _stored(services)[0] == shipped
        assert sorted((spool / "batches").glob("*.refused")) == refused  # still there
        fleet = httpx.get(f"{centre.url}/api/v1/sensors", headers=bearer(analyst)).json()
        assert fleet[0]["last_refusal"] is None  # this run met none

        # What was refused, named as the token's sensor and sent again by the next run.
        aside = sum(len(_batch(f)["observations"]) for f in refused)
        p = _run("--spool-dir", str(spool), "--observer", "s1", command="resend")
        assert p.returncode == 0 and p.stderr.startswith(f"{len(refused)} refused batches back")
        p = _run("--pcap", str(traces[2]), *ours)
        assert p.returncode == 0, p.stderr
        third = _number(_summary(p.stderr), "observations")
        assert _number(_summary(p.stderr), "shipped") == aside + third
        assert _stored(services)[0] == shipped + aside + third


def test_revoked_token_stops_the_run_then_resend_delivers_what_was_refused(
    tmp_path: Path, services: Services
) -> None:
    traces = _traces()
    with services.db.transaction() as s:
        token, row = services.tokens.create(s, Role.SENSOR, "edge-9", None, "test")
    with services.db.transaction() as s:
        assert services.tokens.revoke(s, row.id, "test")
    spool = tmp_path / "spool"
    cfg = _config(tmp_path, batch_size=20)
    port = free_port()
    with Centre(services, port) as centre:
        common = ["--config", str(cfg), "--server", centre.url, "--observer", "edge-9"]
        common += ["--spool-dir", str(spool)]
        p = _run(
            "--pcap", str(traces[0]), *common, "--token-file", str(_token_file(tmp_path, token))
        )
        assert p.returncode == 1, p.stderr
        assert p.stderr.splitlines()[-1] == TOKEN_LINE
        summary = _summary(p.stderr)
        refused = _number(summary, "refused")
        assert refused == len(list((spool / "batches").glob("*.refused"))) > 0
        assert "(last: " in summary and "401 invalid or revoked token" in summary
        first = _number(summary, "observations")
        assert _stored(services) == (0, 0)

        # A new token for the same sensor; the refused batches go back in the queue.
        p = _run("--spool-dir", str(spool), command="resend")
        assert p.returncode == 0, p.stderr
        assert p.stderr.startswith(f"{refused} refused batches back in the queue")
        assert not list((spool / "batches").glob("*.re*"))  # .refused and .reason gone
        fresh = _token_file(tmp_path, make_token(services, Role.SENSOR, name="edge-9"))
        p = _run("--pcap", str(traces[1]), *common, "--token-file", str(fresh))
        assert p.returncode == 0, p.stderr
        summary = _summary(p.stderr)
        second = _number(summary, "observations")
        assert _number(summary, "shipped") == first + second  # the old ones first
        assert _stored(services)[0] == first + second


@pytest.mark.parametrize(
    ("token", "path", "line"),
    [
        ("vigia_s_not-a-token", "", TOKEN_LINE),
        (
            None,
            "/vigia",
            "vigia: the centre has no /api/v1/observations (Not Found): check --server",
        ),
    ],
    ids=["wrong-token", "wrong-address"],
)
def test_a_wrong_token_or_address_stops_a_drained_watch(
    tmp_path: Path, services: Services, token: str | None, path: str, line: str
) -> None:
    watch = tmp_path / "captures"
    watch.mkdir()
    for n, trace in enumerate(_traces()[:2], start=1):
        (watch / f"trace-{n:04d}.pcap").write_bytes(trace.read_bytes())
    token_file = _token_file(tmp_path, token or make_token(services, Role.SENSOR, name="e6"))
    with Centre(services, free_port()) as centre:
        p = _run(
            "--watch",
            str(watch),
            "--drain",
            "--server",
            centre.url + path,
            "--token-file",
            str(token_file),
            "--observer",
            "e6",
            "--spool-dir",
            str(tmp_path / "spool"),
        )
    assert p.returncode == 1, p.stderr
    assert p.stderr.splitlines()[-1] == line
    refused = list((tmp_path / "spool" / "batches").glob("*.refused"))
    assert _number(_summary(p.stderr), "refused") == len(refused) > 0
    assert _stored(services) == (0, 0)


def test_resend_without_a_spool_is_one_line(tmp_path: Path) -> None:
    p = _run("--spool-dir", str(tmp_path / "nothing"), command="resend")
    assert p.returncode == 2
    assert p.stderr.strip() == f"vigia: {tmp_path / 'nothing'}: no spool here (no batches/ folder)"


def test_an_invalid_batch_is_set_aside_and_the_later_ones_ship(
    tmp_path: Path, services: Services
) -> None:
    wikipedia = _traces()[0]
    token_file = _token_file(tmp_path, make_token(services, Role.SENSOR, name="edge-4"))
    spool = tmp_path / "spool"
    Spool(spool / "batches").put(  # left by an older sensor: the centre will never take it
        "edge-4-bad00001",
        gzip.compress(b'{"batch_id": "edge-4-bad00001", "observations": [{"@timestamp": "x"}]}'),
    )
    port = free_port()
    with Centre(services, port) as centre:
        p = _run(
            "--pcap",
            str(wikipedia),
            "--server",
            centre.url,
            "--token-file",
            str(token_file),
            "--observer",
            "edge-4",
            "--spool-dir",
            str(spool),
        )
    assert p.returncode == 0, p.stderr  # not a token problem: the run goes on
    summary = _summary(p.stderr)
    assert "77 observations, 77 shipped, 0 batches spooled, 1 refused, 1 send failures" in summary
    assert "(last: batch: 422 observations[0]: bad timestamp" in summary
    assert _stored(services) == (77, 1)
    [aside] = (spool / "batches").glob("*.refused")
    reason = aside.with_name(aside.name.removesuffix(".refused") + ".reason").read_text()
    assert reason.startswith("422 observations[0]: bad timestamp")
    assert "the centre refused a batch (422 " in p.stderr  # logged, with the reason


def _batch(path: Path) -> dict[str, Any]:
    return dict(json.loads(gzip.decompress(path.read_bytes())))


def _spooled(spool: Path) -> list[str]:
    """The timestamps of the spooled observations, in the order they would be sent."""
    out: list[str] = []
    for f in sorted((spool / "batches").glob("*.json.gz")):
        out += [
            o["@timestamp"] for o in json.loads(gzip.decompress(f.read_bytes()))["observations"]
        ]
    return out


def test_pcap_takes_several_files_in_order_and_the_summary_says_why_nothing_went(
    tmp_path: Path,
) -> None:
    a, b = _traces()[0], _traces()[3]  # wikipedia (2010), smtp (2009): order is not time
    token_file = _token_file(tmp_path, "vigia_s_whatever")
    down = f"http://127.0.0.1:{free_port()}"  # no centre: everything spools
    common = ["--server", down, "--token-file", str(token_file), "--observer", "edge-5"]
    runs = {
        "A B": ["--pcap", str(a), str(b)],
        "A, B": ["--pcap", str(a), "--pcap", str(b)],
        "B A": ["--pcap", str(b), str(a)],
    }
    seen = {}
    for n, (name, files) in enumerate(runs.items()):
        spool = tmp_path / f"run{n}"
        p = _run(*files, *common, "--spool-dir", str(spool))
        assert p.returncode == 0, p.stderr
        summary = _summary(p.stderr)
        assert _number(summary, "packets") == _count([a, b])[0]
        assert "0 shipped" in summary and " 0 refused, " in summary
        assert _number(summary, "send failures") > 0
        assert f"(last: {down}: ConnectError" in summary
        seen[name] = _spooled(spool)
    a_only, b_only = (_spooled_of(tmp_path, x) for x in (a, b))
    assert seen["A B"] == seen["A, B"] == a_only + b_only
    assert seen["B A"] == b_only + a_only


def _spooled_of(tmp_path: Path, pcap: Path) -> list[str]:
    spool = tmp_path / f"one-{pcap.stem}"
    p = _run(
        "--pcap",
        str(pcap),
        "--server",
        f"http://127.0.0.1:{free_port()}",
        "--token-file",
        str(_token_file(tmp_path, "vigia_s_whatever")),
        "--spool-dir",
        str(spool),
    )
    assert p.returncode == 0, p.stderr
    return _spooled(spool)


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["a.pcap", "b.pcap"], "vigia: a.pcap: capture files are read with --pcap (--pcap A B C)"),
        (
            ["--pcap", "a.pcap", "--pcap", "b.pcap", "c.pcap"],
            "vigia: give the files after one --pcap (--pcap A B C) or each after its own, not both",
        ),
    ],
)
def test_capture_files_without_pcap_are_one_line(args: list[str], line: str) -> None:
    p = _run(*args, "--server", "http://127.0.0.1:1")
    assert p.returncode == 2 and p.stderr.strip() == line


# -- a live sensor refused: it keeps capturing, and says so ----------------------


class _Refusing(BaseHTTPRequestHandler):
    """A centre that refuses everything, as one does a token bound to another sensor."""

    heartbeats: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.endswith("/heartbeat"):
            self.heartbeats.append(json.loads(raw))
        body = json.dumps({"detail": "sensor 's1' may not report as 'edge-live'"}).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def refusing_centre() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_live_sensor_keeps_capturing_and_spooling_while_refused_and_reminds_each_minute(
    tmp_path: Path, refusing_centre: str, caplog: pytest.LogCaptureFixture
) -> None:
    now = [1000.0]
    spool = Spool(tmp_path / "spool", max_bytes=1 << 20)
    shipper = Shipper(refusing_centre, "t", spool, "edge-live", batch_size=10, clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="vigia.sensor")
    for i in range(25):
        shipper.add(_obs(i, observer="edge-live"))
    shipper.flush()
    assert shipper.drain() == 3  # all three left the queue: none waits behind another
    assert len(spool) == 0 and spool.refused == 3
    assert shipper.counters.refused_by_status == {403: 3}
    refused_for = "sensor 's1' may not report as 'edge-live'"
    assert shipper.setup_refusal == Refusal(403, refused_for)
    [told] = [r.getMessage() for r in caplog.records]
    assert "403 sensor 's1' may not report as 'edge-live'" in told
    assert "run with --observer s1" in told
    caplog.clear()

    # The heartbeat, refused too, is counted; then it goes as the name the centre gave.
    assert shipper.heartbeat({"packets": 1}) is False
    assert shipper.counters.heartbeat_failures == 1
    assert not caplog.records  # the same cause: told once
    assert shipper.heartbeat({"packets": 2}) is False
    assert [h["observer"] for h in _Refusing.heartbeats[-2:]] == ["s1", "s1"]
    assert _Refusing.heartbeats[-1]["last_refusal"] == "403 " + refused_for

    # Within the minute: more batches refused, nothing more said.
    now[0] += REMIND_S - 1
    for i in range(10):
        shipper.add(_obs(100 + i, observer="edge-live"))
    assert shipper.drain() == 1 and not caplog.records
    # A minute on, refusals still going: one reminder, with the count and the fix.
    now[0] += 2
    shipper.add(_obs(200, observer="edge-live"))
    shipper.flush()
    shipper.drain()
    [reminder] = [r.getMessage() for r in caplog.records]
    # told at the first of five: four more since
    assert reminder.startswith("still refused by the centre: 4 more batches set aside")
    assert "5 in all" in reminder and "capturing and spooling go on" in reminder
    assert "run with --observer s1" in reminder and "vigia sensor resend" in reminder
    caplog.clear()
    # A minute with no refusal: no reminder.
    now[0] += REMIND_S + 1
    shipper.drain()
    assert not caplog.records
    shipper.close()


def test_the_sensor_service_does_not_stop_itself_when_refused(
    tmp_path: Path, refusing_centre: str
) -> None:
    """Only a run over files stops on a refusal (the command does it): the service,
    as a live sensor runs it, reads every packet and sets every batch aside."""
    traces = _traces()[:2]
    spool = Spool(tmp_path / "spool")
    shipper = Shipper(refusing_centre, "t", spool, "edge-live", batch_size=10)
    settings = SensorSettings(observer="edge-live", flush_s=0.0, heartbeat_s=3600)
    service = SensorService(settings, shipper)
    service.run(pcap_files(traces, threading.Event()), threading.Event())
    packets, observations = _count(traces)
    c = service.counters()
    assert c["packets"] == packets and c["observations"] == observations
    assert c["spooled_batches"] == 0 and c["batches_shipped"] == 0
    assert c["batches_refused"] == c["batches_refused_403"] == c["refused_batches_kept"] > 1
    assert len(list((tmp_path / "spool").glob("*.reason"))) == c["batches_refused"]


def test_refused_batches_count_in_the_spool_bound_and_go_first(tmp_path: Path) -> None:
    sp = Spool(tmp_path, max_bytes=350)
    for i in range(3):
        sp.put(f"b{i}", b"x" * 100)
    first = sp.peek()
    assert first is not None
    sp.refuse(first, "401 invalid or revoked token")
    sp.put("b3", b"y" * 100)  # 400 bytes would not fit: the refused one goes, not b1
    assert sp.dropped == 1 and sp.refused == 0 and len(sp) == 3
    assert not list(tmp_path.glob("*.re*"))
    again = Spool(tmp_path, max_bytes=350)  # a restart: sequence numbers go on
    b1 = again.peek()
    assert b1 is not None and b1.batch_id == "b1"
    again.refuse(b1, "403 x")
    again = Spool(tmp_path, max_bytes=350)
    assert again.refused == 1 and again.refused_bytes == 100 and len(again) == 2
    assert again.resend() == 1
    order = []
    while (b := again.peek()) is not None:
        order.append(b.batch_id)
        again.ack(b)
    assert order == ["b1", "b2", "b3"]  # back in its place


def test_resend_beside_a_running_sensor_leaves_it_standing(tmp_path: Path) -> None:
    running = Spool(tmp_path, max_bytes=250)
    running.put("b0", b"x" * 100)
    first = running.peek()
    assert first is not None
    running.refuse(first, "401 invalid or revoked token")
    assert Spool(tmp_path).resend() == 1  # `vigia sensor resend` while it runs
    running.put("b1", b"x" * 100)
    running.put("b2", b"x" * 100)  # makes room: its refused one has gone meanwhile
    assert running.refused == 0 and running.dropped == 1 and len(running) == 2
