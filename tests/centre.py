"""Servers on loopback for the tests: uvicorn in a thread, stoppable; a real centre."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Self

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
