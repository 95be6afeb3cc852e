"""HTTP uploads: multipart/form-data parts, raw PUT/POST bodies and forms, as files.

A real client (httpx, http.client, urllib) posts to a real server (http.server)
on loopback while tcpdump captures; the engine and `vigia scan` then read that
capture. The part parser is also checked on its own: RFC 7578/2046 framing,
names, limits, against python-multipart (what Starlette's forms use), and under
hypothesis for exceptions other than its own.
"""

from __future__ import annotations

import hashlib
import http.client
import http.server
import json
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensors import decode as dec
from sensors.engine import Content, Sensor, SensorConfig
from sensors.extract import multipart as mp
from sensors.observation import Observation
from sensors.pcapfile import read_packets
from tests.centre import free_port

MARKER = b"VIGIA-UPLOAD-MARKER-7578"
# An executable-looking upload: an MZ header, a marker for YARA, 200 KB of noise
# (several loopback segments).
PAYLOAD = b"MZ\x90\x00\x03" + MARKER + random.Random(7578).randbytes(200_000)
PDF = b"%PDF-1.4\n" + random.Random(1).randbytes(5_000) + b"\n%%EOF\n"
SECOND = b"segundo archivo " * 100
FORM = {"usuario": "ana", "clave": "secreta-123"}


# -- the multipart parser on its own ---------------------------------------


def _body(parts: list[tuple[str, bytes]], boundary: str = "XyZ", nl: str = "\r\n") -> bytes:
    """A multipart body from (header lines, data) pairs."""
    out = b"preamble, ignored" + nl.encode()
    for head, data in parts:
        out += f"--{boundary}{nl}".encode() + head.replace("\n", nl).encode() + nl.encode()
        out += nl.encode() + data + nl.encode()
    return out + f"--{boundary}--{nl}epilogue, ignored".encode()


def test_file_and_field_parts_with_quoted_names() -> None:
    body = _body(
        [
            (
                'Content-Disposition: form-data; name="archivo"; '
                'filename="mi \\"putty\\"; v2.exe"\n'
                "Content-Type: application/x-msdownload",
                b"MZ\x00\r\n--XyZnot-a-delimiter\r\n--XyZ-x\n",
            ),
            ('Content-Disposition: form-data; name="comentario"', b"hola"),
            ("Content-Disposition: form-data; name=sin-comillas; filename=a.txt", b""),
        ]
    )
    form = mp.parse(body, mp.boundary_of('multipart/form-data; boundary="XyZ"'))
    assert form.complete
    got = [(p.field, p.filename, p.mime_type, p.data, p.is_file) for p in form.parts]
    assert got == [
        (
            "archivo",
            'mi "putty"; v2.exe',
            "application/x-msdownload",
            b"MZ\x00\r\n--XyZnot-a-delimiter\r\n--XyZ-x\n",  # a boundary then text: content
            True,
        ),
        ("comentario", None, "", b"hola", False),  # a typed-in field, not a file
        ("sin-comillas", "a.txt", "", b"", True),
    ]


def test_windows_paths_keep_their_backslashes() -> None:
    """Browsers send Windows paths with bare backslashes; only \\" and \\\\ are escapes."""
    _kind, params = mp.header_params('form-data; name="f"; filename="C:\\Users\\ana\\putty.exe"')
    assert params["filename"] == "C:\\Users\\ana\\putty.exe"
    assert mp.split_path(params["filename"]) == ("putty.exe", "C:\\Users\\ana\\putty.exe")
    assert mp.split_path("putty.exe") == ("putty.exe", "")


def test_rfc5987_filename_star_wins_over_filename() -> None:
    def name(disposition: str) -> str | None:
        return mp.disposition_filename(mp.header_params(disposition)[1])

    assert name("form-data; filename=\"naive.exe\"; filename*=UTF-8''na%C3%AFve.exe") == (
        "naïve.exe"
    )
    assert name("attachment; filename*=iso-8859-1'es'contrase%F1a.txt") == "contraseña.txt"
    assert name("attachment; filename*=bad-no-quotes; filename=x.bin") == "x.bin"  # falls back
    assert name('form-data; name="campo"') is None
    assert name("form-data; filename=") == ""  # a browser's empty file input


@pytest.mark.parametrize("nl", ["\r\n", "\n"])
def test_crlf_and_bare_lf_bodies_give_the_same_parts(nl: str) -> None:
    body = _body(
        [
            ('Content-Disposition: form-data; name="a"; filename="uno.bin"', b"\x00\x01\x02"),
            ('Content-Disposition: form-data; name="b"', b"dos"),
        ],
        nl=nl,
    )
    form = mp.parse(body, b"XyZ")
    assert form.complete
    assert [(p.filename, p.data) for p in form.parts] == [
        ("uno.bin", b"\x00\x01\x02"),
        (None, b"dos"),
    ]


def test_mixed_line_ends_and_transport_padding() -> None:
    body = (
        b"--XyZ  \t\r\n"  # transport padding after the delimiter (RFC 2046)
        b'Content-Disposition: form-data; name="a"; filename="x.bin"\n\r\n'
        b"datos\n--XyZ\r\n"
        b"\r\n"  # a part without any header line: a field with no name
        b"sin cabecera\r\n--XyZ--"
    )
    form = mp.parse(body, b"XyZ")
    assert [(p.filename, p.data) for p in form.parts] == [
        ("x.bin", b"datos"),
        (None, b"sin cabecera"),
    ]
    assert form.complete


def test_missing_closing_boundary_keeps_the_parts_and_says_so() -> None:
    whole = _body([('Content-Disposition: form-data; name="f"; filename="p.exe"', PDF)])
    cut = whole[: whole.index(b"\r\n--XyZ--")]
    form = mp.parse(cut, b"XyZ")
    assert not form.complete
    assert [(p.filename, p.data) for p in form.parts] == [("p.exe", PDF)]
    # cut inside a part's header, or right after a delimiter: no part, not complete
    assert not mp.parse(b"--XyZ\r\nContent-Disposition: form-da", b"XyZ").complete
    assert mp.parse(b"--XyZ", b"XyZ").parts == []


def test_nested_multipart_mixed_holds_several_files() -> None:
    inner = _body(
        [
            ('Content-Disposition: file; filename="uno.txt"\nContent-Type: text/plain', b"1"),
            ('Content-Disposition: file; filename="dos.gif"\nContent-Type: image/gif', b"GIF89a"),
        ],
        boundary="BbC",
    )
    body = _body(
        [
            ('Content-Disposition: form-data; name="campo"', b"valor"),
            (
                'Content-Disposition: form-data; name="archivos"\n'
                "Content-Type: multipart/mixed; boundary=BbC",
                inner,
            ),
        ]
    )
    form = mp.parse(body, b"XyZ")
    assert [(p.field, p.filename, p.data) for p in form.parts] == [
        ("campo", None, b"valor"),
        ("archivos", "uno.txt", b"1"),
        ("archivos", "dos.gif", b"GIF89a"),
    ]
    deeper = _body(
        [("Content-Type: multipart/mixed; boundary=XyZ", body)], boundary="Outer"
    )  # three levels
    with pytest.raises(mp.MultipartError, match="too deep"):
        mp.parse(deeper, b"Outer")


def test_many_parts_up_to_the_cap() -> None:
    fields = [(f'Content-Disposition: form-data; name="c{i}"', str(i).encode()) for i in range(300)]
    form = mp.parse(_body(fields[: mp.MAX_PARTS]), b"XyZ")
    assert [p.data for p in form.parts] == [str(i).encode() for i in range(mp.MAX_PARTS)]
    with pytest.raises(mp.MultipartError, match="too many parts"):
        mp.parse(_body(fields), b"XyZ")


@pytest.mark.parametrize(
    ("content_type", "body", "reason"),
    [
        ("multipart/form-data", b"", "without boundary"),
        ("multipart/form-data; boundary=" + "b" * 300, b"", "boundary too long"),
        ("multipart/form-data; boundary=XyZ", b"no delimiter at all", "boundary not found"),
        (
            "multipart/form-data; boundary=XyZ",
            b"--XyZ\r\nContent-Disposition: x\r\n--XyZ--",
            "header without end",
        ),
        (
            "multipart/form-data; boundary=XyZ",
            b"--XyZ\r\nX-Long: " + b"a" * 10_000 + b"\r\n\r\ndata\r\n--XyZ--",
            "header without end",
        ),
    ],
)
def test_malformed_bodies_raise_only_multipart_error(
    content_type: str, body: bytes, reason: str
) -> None:
    with pytest.raises(mp.MultipartError, match=reason):
        mp.parse(body, mp.boundary_of(content_type))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_raises_nothing_but_multipart_error(data: st.DataObject) -> None:
    """Random and mutated bodies: the parser returns or raises MultipartError, never else."""
    seed = _body(
        [
            ("Content-Disposition: form-data; name=\"f\"; filename*=UTF-8''%C3%B1.exe", b"MZ" * 20),
            (
                'Content-Disposition: form-data; name="m"\n'
                "Content-Type: multipart/mixed; boundary=I\n"
                "Content-Transfer-Encoding: base64",
                b'--I\r\nContent-Disposition: file; filename="a"\r\n\r\nQUJD\r\n--I--',
            ),
        ]
    )
    if data.draw(st.booleans()):
        body = bytearray(seed)
        for _ in range(data.draw(st.integers(0, 12))):
            pos = data.draw(st.integers(0, len(body) - 1))
            body[pos] = data.draw(st.sampled_from(b'-\r\n"\\;=*%\x00aXyZ'))
        body = body[: data.draw(st.integers(0, len(body)))]
    else:
        body = bytearray(data.draw(st.binary(max_size=400)))
    header = data.draw(
        st.one_of(
            st.just('multipart/form-data; boundary="XyZ"'),
            st.text(max_size=80).map(lambda t: "multipart/form-data; " + t),
        )
    )
    try:
        form = mp.parse(bytes(body), mp.boundary_of(header))
    except mp.MultipartError:
        return
    assert len(form.parts) <= mp.MAX_PARTS
    assert sum(len(p.data) for p in form.parts) <= len(body)  # no part invents bytes


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(
        st.tuples(
            st.text(st.characters(codec="utf-8", exclude_characters='"\\\r\n'), min_size=1),
            st.one_of(
                st.none(),
                st.text(st.characters(codec="utf-8", exclude_characters='"\\/\r\n'), min_size=1),
            ),
            st.binary(max_size=300).map(lambda b: b.replace(b"\r\n--", b"\r\n-+")),
        ),
        max_size=6,
    )
)
def test_same_parts_as_python_multipart(parts: list[tuple[str, str | None, bytes]]) -> None:
    """Well-formed bodies: the same parts, names and bytes as the parser Starlette's
    forms use (python-multipart)."""
    pm = pytest.importorskip("python_multipart")
    from python_multipart.multipart import parse_options_header

    boundary = "----vigia" + hashlib.md5(repr(parts).encode()).hexdigest()
    body = b""
    for field, filename, data in parts:
        disp = f'form-data; name="{field}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disp}\r\n\r\n".encode() + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()

    seen: list[dict[str, Any]] = []
    header: dict[str, bytes] = {"field": b"", "value": b""}

    def header_value(d: bytes, start: int, end: int) -> None:
        header["value"] += d[start:end]

    def header_end() -> None:
        if header["field"].lower() == b"content-disposition":
            _kind, params = parse_options_header(header["value"])
            seen[-1]["name"] = params.get(b"name", b"").decode()
            fn = params.get(b"filename")
            seen[-1]["filename"] = fn.decode() if fn is not None else None
        header["field"], header["value"] = b"", b""

    callbacks: Any = {
        "on_part_begin": lambda: seen.append({"data": b""}),
        "on_part_data": lambda d, s, e: seen[-1].update(data=seen[-1]["data"] + d[s:e]),
        "on_header_field": lambda d, s, e: header.update(field=header["field"] + d[s:e]),
        "on_header_value": header_value,
        "on_header_end": header_end,
    }
    parser = pm.MultipartParser(boundary, callbacks)
    parser.write(body)
    parser.finalize()
    ours = mp.parse(body, boundary.encode())
    assert ours.complete
    assert [(p.field, p.filename, p.data) for p in ours.parts] == [
        (s["name"], s["filename"], s["data"]) for s in seen
    ]


# -- a real upload on loopback, captured ------------------------------------


class _Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received: ClassVar[list[tuple[str, str, bytes]]] = []  # (method, path, body as read)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def _answer(self) -> None:
        self.received.append((self.command, self.path, self._read_body()))
        reply = b'{"recibido": true}'
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_POST = do_PUT = _answer

    def log_message(self, *args: Any) -> None:
        pass


def _chunked_multipart_with_filename_star(port: int) -> None:
    """http.client, chunked: a part named with RFC 5987's filename*."""
    boundary = "vigia-chunked-boundary"
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="doc"; '
            "filename*=UTF-8''contrase%C3%B1as.txt\r\n"
            "Content-Type: text/plain\r\n\r\n"
        ).encode()
        + SECOND
        + f"\r\n--{boundary}--\r\n".encode()
    )
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    pieces = [body[i : i + 700] for i in range(0, len(body), 700)]
    conn.request(
        "POST",
        "/api/documentos",
        body=iter(pieces),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        encode_chunked=True,
    )
    assert conn.getresponse().read() == b'{"recibido": true}'
    conn.close()


@pytest.fixture(scope="module")
def upload_pcap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    import httpx

    tcpdump = shutil.which("tcpdump")
    if tcpdump is None:
        pytest.skip("tcpdump not installed")
    pcap = tmp_path_factory.mktemp("upload") / "upload.pcap"
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    capture = subprocess.Popen(
        # --immediate-mode: each packet as it comes (else the kernel's ring holds them
        # up to a second, and what it holds at the stop is lost); -B: a ring with room
        # for a burst of 64 KiB loopback segments (the default holds a handful).
        [
            tcpdump,
            "-i",
            "lo",
            "--immediate-mode",
            "-B",
            "32768",
            "-U",
            "-w",
            str(pcap),
            f"tcp port {port}",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert capture.stderr is not None
        line = capture.stderr.readline()  # "listening on lo, ..." once the capture runs
        if "listening" not in line:
            pytest.skip(f"tcpdump cannot capture on lo: {line.strip()}")
        _Receiver.received.clear()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            r = client.post(
                "/subir.php",
                files={"archivo": ("putty.exe", PAYLOAD, "application/x-msdownload")},
                data={"comentario": "informe mensual"},
            )
            assert r.status_code == 201
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/compartido/informe.pdf",
            data=PDF,
            method="PUT",
            headers={"Content-Type": "application/pdf"},
        )
        assert urllib.request.urlopen(req, timeout=10).status == 201
        form = urllib.parse.urlencode(FORM).encode()  # urllib posts it as a urlencoded form
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/login", form, 10).status == 201
        _chunked_multipart_with_filename_star(port)
        time.sleep(0.5)  # the last FINs reach the file
    finally:
        capture.send_signal(signal.SIGINT)
        try:
            _out, stats = capture.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            capture.kill()
            _out, stats = capture.communicate()
        server.shutdown()
        server.server_close()
    assert re.search(r"^0 packets dropped by kernel", stats, re.M), stats  # else a segment is lost
    assert [(m, p) for m, p, _ in _Receiver.received] == [
        ("POST", "/subir.php"),
        ("PUT", "/compartido/informe.pdf"),
        ("POST", "/login"),
        ("POST", "/api/documentos"),
    ]
    yield pcap


def _engine(pcap: Path) -> tuple[list[Observation], list[Content], Sensor]:
    seen: list[Observation] = []
    contents: list[Content] = []
    sensor = Sensor(SensorConfig(), seen.append, contents.append)
    for ts, linktype, frame in read_packets(pcap):
        sensor.packet(ts, linktype, frame)
    sensor.finish()
    return seen, contents, sensor


def _hashes(data: bytes) -> dict[str, list[str]]:
    return {
        "file.hash.md5": [hashlib.md5(data).hexdigest()],
        "file.hash.sha1": [hashlib.sha1(data).hexdigest()],
        "file.hash.sha256": [hashlib.sha256(data).hexdigest()],
    }


def test_captured_upload_yields_each_file_with_name_type_size_and_hashes(
    upload_pcap: Path,
) -> None:
    seen, contents, sensor = _engine(upload_pcap)
    files = [o.values for o in seen if o.protocol == "http" and "file.size" in o.values]
    reply = b'{"recibido": true}'
    received = {p: body for _m, p, body in _Receiver.received}
    login = received["/login"]
    assert login == urllib.parse.urlencode(FORM).encode()
    # In any order: the capture interleaves the clients' connections as they ran.
    assert sorted(files, key=repr) == sorted(
        [
            # the multipart upload: the file part, not the form field beside it
            {
                "file.name": ["putty.exe"],
                "file.mime_type": ["application/x-msdownload"],
                "file.size": [str(len(PAYLOAD))],
                **_hashes(PAYLOAD),
            },
            {
                "file.mime_type": ["application/json"],
                "file.size": [str(len(reply))],
                **_hashes(reply),
            },
            # a raw PUT: named by its URI, typed by its Content-Type
            {
                "file.name": ["informe.pdf"],
                "file.mime_type": ["application/pdf"],
                "file.size": [str(len(PDF))],
                **_hashes(PDF),
            },
            {
                "file.mime_type": ["application/json"],
                "file.size": [str(len(reply))],
                **_hashes(reply),
            },
            # a urlencoded form: the raw body, hashed whole, not named after /login
            {
                "file.mime_type": ["application/x-www-form-urlencoded"],
                "file.size": [str(len(login))],
                **_hashes(login),
            },
            {
                "file.mime_type": ["application/json"],
                "file.size": [str(len(reply))],
                **_hashes(reply),
            },
            # chunked multipart, the name in RFC 5987's filename*
            {
                "file.name": ["contraseñas.txt"],
                "file.mime_type": ["text/plain"],
                "file.size": [str(len(SECOND))],
                **_hashes(SECOND),
            },
            {
                "file.mime_type": ["application/json"],
                "file.size": [str(len(reply))],
                **_hashes(reply),
            },
        ],
        key=repr,
    )
    uploads = [(c.source, c.data) for c in contents if c.source == "http.request.body"]
    assert sorted(uploads) == sorted(
        [
            ("http.request.body", PAYLOAD),
            ("http.request.body", PDF),
            ("http.request.body", login),
            ("http.request.body", SECOND),
        ]
    )
    assert not sensor.counters.protocol_errors
    # In ECS the size is a number (file.size is a `long`).
    first = next(o for o in seen if o.values.get("file.name") == ["putty.exe"])
    assert first.to_ecs()["file"]["size"] == len(PAYLOAD)


def test_vigia_scan_alerts_on_the_uploaded_name_hash_and_bytes(
    upload_pcap: Path, tmp_path: Path
) -> None:
    sha256 = hashlib.sha256(PAYLOAD).hexdigest()
    by_name = tmp_path / "nombre.csv"
    by_name.write_text("type,value\nfilename,putty.exe\n")
    by_hash = tmp_path / "hash.csv"
    by_hash.write_text(f"type,value\nsha256,{sha256}\n")
    rule = tmp_path / "subida.yar"
    rule.write_text(
        "rule vigia_upload_marker { strings: $mz = { 4D 5A } $m = "
        f'"{MARKER.decode()}" condition: $mz at 0 and $m and filename == "putty.exe" }}\n'
    )
    rule_externals = subprocess.run(
        [
            sys.executable,
            "-m",
            "vigia",
            "scan",
            str(upload_pcap),
            "-i",
            str(by_name),
            "-i",
            str(by_hash),
            "--yara",
            str(rule),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rule_externals.returncode == 0, rule_externals.stderr
    alerts = [json.loads(line) for line in rule_externals.stdout.splitlines() if line.strip()]
    matched = sorted(
        (
            a["threat"]["enrichments"][0]["matched"]["field"],
            a["threat"]["enrichments"][0]["matched"]["atomic"],
        )
        for a in alerts
    )
    assert matched == [
        ("file.hash.sha256", sha256),  # the indicator's hash
        ("file.hash.sha256", sha256),  # the YARA rule, on the part's bytes
        ("file.name", "putty.exe"),
    ]
    (yara_alert,) = [a for a in alerts if a.get("rule", {}).get("name")]
    assert yara_alert["rule"]["name"] == "vigia_upload_marker"
    assert yara_alert["source"]["ip"] == "127.0.0.1"


# -- through the engine: malformed and capped bodies ------------------------


def _post(
    body: bytes, content_type: str, max_body: int = 4 * 1024 * 1024
) -> tuple[list[Observation], Sensor]:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    head = (
        f"POST /subir HTTP/1.1\r\nHost: portal.example\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    req = head + body
    c, s = "10.12.0.1", "10.12.0.2"
    frames = [Ether() / IP(src=c, dst=s) / TCP(sport=42000, dport=80, flags="S", seq=0)]
    for off in range(0, len(req), 1400):
        frames.append(
            Ether()
            / IP(src=c, dst=s)
            / TCP(sport=42000, dport=80, flags="PA", seq=1 + off)
            / req[off : off + 1400]
        )
    seen: list[Observation] = []
    sensor = Sensor(SensorConfig(max_body=max_body), seen.append, lambda c: None)
    for f in frames:
        sensor.packet(0.0, dec.LINKTYPE_ETHERNET, bytes(f))
    sensor.finish()
    return [o for o in seen if "file.size" in o.values], sensor


def test_a_malformed_multipart_body_is_counted_and_taken_whole() -> None:
    body = b"--XyZ\r\nContent-Disposition: x\r\n--XyZ--"  # a header block with no end
    files, sensor = _post(body, "multipart/form-data; boundary=XyZ")
    assert sensor.counters.protocol_errors == {"http: multipart part header without end": 1}
    assert [o.values["file.hash.sha256"] for o in files] == [[hashlib.sha256(body).hexdigest()]]
    files, sensor = _post(b"anything", "multipart/form-data")  # no boundary parameter
    assert sensor.counters.protocol_errors == {"http: multipart without boundary": 1}
    assert len(files) == 1


def test_a_missing_closing_boundary_is_an_error_unless_the_body_was_capped() -> None:
    whole = _body([('Content-Disposition: form-data; name="f"; filename="p.exe"', PDF)])
    cut = whole[: whole.index(b"\r\n--XyZ--")]
    files, sensor = _post(cut, "multipart/form-data; boundary=XyZ")
    assert sensor.counters.protocol_errors == {"http: multipart without closing boundary": 1}
    assert [o.values["file.hash.sha256"] for o in files] == [_hashes(PDF)["file.hash.sha256"]]
    # Over the body cap the end is missing by our choice: the part is kept, no error.
    files, sensor = _post(whole, "multipart/form-data; boundary=XyZ", max_body=3000)
    assert not sensor.counters.protocol_errors
    assert [o.values["file.name"] for o in files] == [["p.exe"]]
    assert int(files[0].values["file.size"][0]) < len(PDF)


def _mutated_uploads(path: Path, count: int = 300) -> Path:
    """POSTs of multipart bodies with bytes changed and ends cut (seeded: repeatable)."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    seed = _body(
        [
            ('Content-Disposition: form-data; name="f"; filename="a.exe"', b"MZ" * 50),
            ("Content-Disposition: form-data; name=\"g\"; filename*=UTF-8''%C3%B1", b"x" * 40),
            ('Content-Disposition: form-data; name="c"', b"campo"),
        ]
    )
    rng = random.Random(7578)
    frames = []
    for i in range(count):
        body = bytearray(seed)
        for _ in range(rng.randint(0, 6)):
            body[rng.randrange(len(body))] = rng.choice(b'-\r\n"\\;=*%\x00XyZ')
        if rng.random() < 0.3:
            body = body[: rng.randint(0, len(body))]
        head = (
            "POST /s HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=XyZ\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        c, port = f"10.13.{i // 250}.{i % 250 + 1}", 30000 + i
        frames += [
            Ether() / IP(src=c, dst="10.13.9.9") / TCP(sport=port, dport=80, flags="S", seq=0),
            Ether()
            / IP(src=c, dst="10.13.9.9")
            / TCP(sport=port, dport=80, flags="PA", seq=1)
            / (head + bytes(body)),
        ]
    wrpcap(str(path), frames)
    return path


def test_compiled_and_plain_python_parse_uploads_alike(upload_pcap: Path, tmp_path: Path) -> None:
    """The multipart parser runs compiled (sensors.compiled): on the captured uploads and
    on mutated ones (its error paths) it does exactly what the plain Python does."""
    from tests.test_compiled import PURE, ROOT, _run

    if PURE:
        pytest.skip("VIGIA_PURE_PYTHON=1: nothing compiled to compare")
    pcaps = [upload_pcap, _mutated_uploads(tmp_path / "mutated.pcap")]
    plain = tmp_path / "plain"
    shutil.copytree(
        ROOT / "sensors", plain / "sensors", ignore=shutil.ignore_patterns("*.so", "__pycache__")
    )
    ours, reference = _run(ROOT, pcaps), _run(plain, pcaps)
    assert ours["engine"].endswith(".so") and reference["engine"].endswith(".py")
    assert ours["files"] == reference["files"]
    mutated = ours["files"][str(pcaps[1])]
    assert mutated["counters"]["protocol_errors"]  # the error paths ran...
    assert len(mutated["contents"]) > 100  # ...and so did the parts
