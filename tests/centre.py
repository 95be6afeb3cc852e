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
    """`vigia token create ARGS` on the centre of `env`, run in the test process
    (tests/vigia_cli.py: a process is ~1.5 s of CPU; tests/test_core.py runs this verb
    as a real process)."""
    from tests.vigia_cli import in_process

    rest = {k: v for k, v in env.items() if k.startswith("VIGIA_") and k != "VIGIA_DATA_DIR"}
    r = in_process(Path(env["VIGIA_DATA_DIR"]), "token", "create", *args, **rest)
    assert r.returncode == 0, r.stderr
    m = re.search(r"vga_[A-Za-z0-9_-]{40,}", r.stdout)
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


# -- `vigia up` as a person starts it ------------------------------------------------


class Up:
    """`vigia up` on loopback on the data dir `data` (the national demo, unless
    `--no-demo` is among `args`), answering on /health once started. What it prints
    goes to files beside `data`, one pair per start: a pipe nobody reads while it
    serves would stall a centre that a whole module shares once it fills.

        with Up(tmp_path / "data") as up:   # or up = Up(...).start(); ...; up.stop()
            httpx.get(f"{up.url}/api/v1/alerts", headers=bearer(up.admin))
    """

    def __init__(
        self,
        data: Path,
        *args: str,
        port: int | None = None,
        env: dict[str, str] | None = None,
        within_s: float = 60,
    ) -> None:
        self.data = data
        self.args = args
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **(env or {}), "VIGIA_DATA_DIR": str(data)}
        self.env["PYTHONUNBUFFERED"] = "1"
        self.env.pop("VIGIA_DATABASE_URL", None)
        self.within_s = within_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._admin: str | None = None

    def _printed(self, stream: str) -> Path:
        return self.data.parent / f"{self.data.name}.up{self.starts}.{stream}"

    def start(self) -> Self:
        self.data.parent.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with self._printed("out").open("wb") as out, self._printed("err").open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "vigia", "up", "--port", str(self.port), *self.args],
                stdout=out,
                stderr=err,
                env=self.env,
            )
        try:
            self._wait()
        except BaseException:
            self.proc.kill()
            self.proc.wait()
            raise
        return self

    def _wait(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.within_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"vigia up exited ({self.proc.returncode}): {self.err}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"vigia up did not answer on /health within {self.within_s:.0f} s")

    @property
    def out(self) -> str:
        """What this start printed on stdout so far."""
        return self._printed("out").read_text(errors="replace")

    @property
    def err(self) -> str:
        """What this start printed on stderr so far."""
        return self._printed("err").read_text(errors="replace")

    @property
    def admin(self) -> str:
        """The one-time admin token the first start printed, alone on stdout (before
        it served: there once /health answers)."""
        if self._admin is None:
            first = self.data.parent / f"{self.data.name}.up1.out"
            self._admin = first.read_text().split("\n", 1)[0].strip()
            assert self._admin.startswith("vga_"), "no admin token printed"
        return self._admin

    def token(self, role: str, entity: str | None = None) -> str:
        """A new token, made through the API by the admin (a CLI `vigia token create`
        is a second process start: seconds of CPU)."""
        body = {"role": role, "name": f"{role} {entity or ''}".strip(), "entity_id": entity}
        r = httpx.post(
            f"{self.url}/api/v1/tokens",
            json=body,
            headers={"Authorization": f"Bearer {self.admin}"},
            timeout=60,
        )
        assert r.status_code == 201, r.text
        return str(r.json()["token"])

    def stop(self, patient: bool = False) -> tuple[str, str]:
        """Stopped as a person stops it (SIGTERM); what this start printed, stdout and
        stderr. Not stopped within 20 s: killed, and a failure unless `patient` (a
        loaded machine may make it slow)."""
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            if not patient:
                raise AssertionError("vigia up did not stop within 20 s of SIGTERM") from None
        return self.out, self.err

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop(patient=exc_type is not None)  # not to hide the test's own failure
