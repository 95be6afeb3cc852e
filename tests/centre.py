"""Servers on loopback for the tests: uvicorn in a thread, stoppable; a real centre."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Self

import httpx
import uvicorn

from api.app import create_app
from vigia.wiring import Services


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """An ASGI app served by uvicorn in a thread on 127.0.0.1."""

    def __init__(self, app: Any, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.url} did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class Centre(ServerThread):
    """A real Vigía centre on loopback."""

    def __init__(self, services: Services, port: int) -> None:
        super().__init__(create_app(services), port)


# -- `vigia serve` as a process, and the command line beside it -------------------


def vigia_cli(env: dict[str, str], *args: str) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "vigia", *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def cli_token(env: dict[str, str], *args: str) -> str:
    m = re.search(r"vga_[A-Za-z0-9_-]{40,}", vigia_cli(env, "token", "create", *args))
    assert m, "no token printed"
    return m.group(0)


def wait_answering(url: str, proc: subprocess.Popen[Any], within_s: float = 120) -> None:
    """Until `url` answers 200; fails at once, with what it printed, if `proc` exits."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"the server exited ({proc.returncode}): {err!r}"[:2000])
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {within_s:.0f} s")


class ServeProcess:
    """`vigia serve` on loopback with a YARA folder of the test's."""

    def __init__(self, tmp: Path) -> None:
        self.yara = tmp / "yara"
        self.yara.mkdir()
        self.env = {
            **os.environ,
            "VIGIA_DATA_DIR": str(tmp / "data"),
            "VIGIA_YARA_DIR": str(self.yara),
            "PYTHONUNBUFFERED": "1",
        }
        self.env.pop("VIGIA_DATABASE_URL", None)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> ServeProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vigia", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_answering(self.url + "/health", self.proc)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
