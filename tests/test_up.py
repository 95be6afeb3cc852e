"""`vigia up` as a user starts it: a real process on loopback, demo data, console."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from pathlib import Path

import httpx

from tests.centre import Up
from tests.console import console_login

# The start-and-wait of `vigia up` is tests/centre.py's Up; these are left for
# test_cli_claims' own starts (`up --data-dir` from another directory, `serve`).


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"vigia up exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("vigia up did not answer on /health within 60 s")


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.terminate()
    out, err = proc.communicate(timeout=20)
    return out, err


def test_up_serves_demo_alerts_in_the_console(tmp_path: Path) -> None:
    with Up(tmp_path / "data") as up:
        with httpx.Client(base_url=up.url) as c:
            assert c.get("/api/v1/alerts").status_code == 401
        out, err = up.stop()
    token = out.strip().splitlines()[-1]
    assert re.fullmatch(r"vga_[A-Za-z0-9_-]{40,}", token)
    assert f"Consola: http://127.0.0.1:{up.port}/console/login" in err
    assert "datos de demostración" in err

    # Second start on the same data and port: no new admin token, no second demo load.
    up.start()
    try:
        with httpx.Client(base_url=up.url) as c:
            alerts = c.get("/api/v1/alerts", headers={"Authorization": f"Bearer {token}"}).json()
            assert len(alerts["alerts"]) == 5
            fields = {a["threat"]["enrichments"][0]["matched"]["field"] for a in alerts["alerts"]}
            assert fields == {"dns.question.name", "url.domain", "url.original", "destination.ip"}
            r = console_login(c, token, follow=True)
            assert r.status_code == 200
            assert "<h1>Alertas</h1>" in r.text and "Ministerio de Demostración" in r.text
            assert r.text.count('<tr class="sev-') == 5
            assert "Gobierno Autónomo Municipal de Ejemplo" in r.text  # bro.org, TLP:AMBER
    finally:
        out2, err2 = up.stop()
    assert "vga_" not in out2 and "datos de demostración" not in err2
