"""Live capture for real: two network namespaces joined by a veth pair, real traffic.

Namespace A holds the servers, `vigia serve` and `vigia sensor run
--interface` (with a kernel BPF filter); namespace B is the client sending
DNS, HTTP and TLS across the veth pair.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("tcpdump") is None,
    reason="needs root, iproute2 and tcpdump (for BPF compilation)",
)

CLIENT_SCRIPT = r"""
import socket, ssl, struct, sys, urllib.request
server = sys.argv[1]
name = b"lookup.vigia-test.example"
q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(p)]) + p for p in name.split(b".")) + b"\x00" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(q, (server, 53))
req = urllib.request.Request(f"http://{server}:8080/informe.html",
                             headers={"Host": "portal.vigia-test.example",
                                      "User-Agent": "vigia-live-test/1.0"})
print(urllib.request.urlopen(req, timeout=5).status)
ctx = ssl.create_default_context()
try:
    with socket.create_connection((server, 8443), timeout=5) as raw:
        ctx.wrap_socket(raw, server_hostname="secure.vigia-test.example")
except (ssl.SSLError, OSError):
    pass  # the listener hangs up: the ClientHello has been sent
"""


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


SERVERS_SCRIPT = r"""
import http.server, socket, sys, threading
addr = sys.argv[1]

class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"<html>informe</html>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass

web = http.server.ThreadingHTTPServer((addr, 8080), Page)
threading.Thread(target=web.serve_forever, daemon=True).start()
tls = socket.socket()
tls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tls.bind((addr, 8443))
tls.listen()
print("ready", flush=True)
while True:
    conn, _ = tls.accept()
    conn.recv(4096)  # take the ClientHello, then hang up
    conn.close()
"""


@pytest.fixture
def two_namespaces() -> Iterator[tuple[str, str, str, str]]:
    """(sensor namespace, its interface, its address, client namespace), joined by veth."""
    tag = uuid.uuid4().hex[:6]
    ns_a, ns_b, if_a, if_b = f"vgA{tag}", f"vgB{tag}", f"vga{tag}", f"vgb{tag}"
    octet = int(tag[:2], 16) % 250 + 1
    addr_a, addr_b = f"10.232.{octet}.1", f"10.232.{octet}.2"
    sh("ip", "netns", "add", ns_a)
    sh("ip", "netns", "add", ns_b)
    try:
        sh(
            "ip",
            "link",
            "add",
            if_a,
            "netns",
            ns_a,
            "type",
            "veth",
            "peer",
            "name",
            if_b,
            "netns",
            ns_b,
        )
        for ns, ifname, addr in ((ns_a, if_a, addr_a), (ns_b, if_b, addr_b)):
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{addr}/30", "dev", ifname)
            sh("ip", "netns", "exec", ns, "ip", "link", "set", ifname, "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        yield ns_a, if_a, addr_a, ns_b
    finally:
        subprocess.run(["ip", "netns", "del", ns_a], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns_b], capture_output=True)


WAIT_FOR_HEALTH = """
import time, urllib.request
for _ in range(240):
    try:
        urllib.request.urlopen("http://127.0.0.1:8000/health", timeout=1)
        break
    except OSError:
        time.sleep(0.25)
"""


def _in(ns: str, *args: str, **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )  # type: ignore[call-overload]


def test_two_namespaces_sensor_to_a_real_vigia_server(
    two_namespaces: tuple[str, str, str, str], tmp_path: Path
) -> None:
    """Namespace A holds the servers, the sensor and `vigia serve` on its own loopback;
    namespace B is the client. Everything crosses the veth pair for real."""
    ns_a, if_a, addr_a, ns_b = two_namespaces
    env = {**os.environ, "VIGIA_DATA_DIR": str(tmp_path / "centre"), "PYTHONUNBUFFERED": "1"}
    env.pop("VIGIA_DATABASE_URL", None)
    token = subprocess.run(
        [sys.executable, "-m", "vigia", "token", "create", "--role", "sensor", "--name", "edge-ns"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.strip()
    token_file = tmp_path / "token"
    token_file.write_text(token)
    procs = [
        _in(ns_a, sys.executable, "-m", "vigia", "serve", "--port", "8000", env=env),
        _in(ns_a, sys.executable, "-c", SERVERS_SCRIPT, addr_a),
    ]
    try:
        assert procs[1].stdout is not None and procs[1].stdout.readline().strip() == "ready"
        sensor = _in(
            ns_a,
            sys.executable,
            "-m",
            "vigia",
            "sensor",
            "run",
            "--interface",
            if_a,
            "--bpf",
            "udp port 53 or tcp port 8080 or tcp port 8443",
            "--server",
            "http://127.0.0.1:8000",
            "--token-file",
            str(token_file),
            "--observer",
            "edge-ns",
            "--spool-dir",
            str(tmp_path / "spool"),
        )
        procs.append(sensor)
        # The centre answers (its start-up time varies with the machine), then the
        # capture socket has had a moment to open.
        subprocess.run(
            ["ip", "netns", "exec", ns_a, sys.executable, "-c", WAIT_FOR_HEALTH],
            check=True,
            timeout=60,
        )
        time.sleep(1.0)
        assert sensor.poll() is None and procs[0].poll() is None
        client = subprocess.run(
            ["ip", "netns", "exec", ns_b, sys.executable, "-c", CLIENT_SCRIPT, addr_a],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert client.returncode == 0 and "200" in client.stdout, client.stderr
        time.sleep(1.0)
        sensor.send_signal(signal.SIGTERM)
        _out, err = sensor.communicate(timeout=30)
        assert sensor.returncode == 0, err
        assert "0 batches spooled" in err  # everything reached the server
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=20)
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'centre' / 'vigia.db'}")
    with engine.connect() as conn:
        docs = [
            json.loads(d) if isinstance(d, str) else d
            for (d,) in conn.exec_driver_sql("SELECT doc FROM observations")
        ]
        beat = conn.exec_driver_sql("SELECT counters FROM sensors WHERE name = 'edge-ns'").scalar()
    engine.dispose()
    names = {d.get("dns", {}).get("question", {}).get("name") for d in docs} - {None}
    assert names == {"lookup.vigia-test.example"}
    assert {d.get("url", {}).get("domain") for d in docs} - {None} == {"portal.vigia-test.example"}
    sni = {d.get("tls", {}).get("client", {}).get("server_name") for d in docs} - {None}
    assert sni == {"secure.vigia-test.example"}
    counters = json.loads(beat) if isinstance(beat, str) else beat
    assert counters["kernel_packets"] > 0 and counters["kernel_drops"] == 0
