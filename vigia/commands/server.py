"""`vigia up` (the whole platform, embedded, with demo data) and `vigia serve`."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path
from typing import Annotated, Any

import typer

from core import private
from vigia.commands import fail


def _run(host: str, port: int, data_dir: Path | None, demo: bool, first_admin: bool) -> None:
    import uvicorn

    from api.app import create_app
    from core.settings import SettingsError, load_settings
    from core.tokens import Role, TokenService
    from vigia import scheduler
    from vigia.wiring import build

    overrides: dict[str, Any] = {"host": host, "port": port}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        fail(str(exc))
    # Every file this process writes (database, WAL, evidence, rules) is its own.
    os.umask(private.UMASK)
    # The port first: a taken port is one line and exit 2, before anything is built
    # or "escuchando" is printed; uvicorn then serves on this very socket.
    sock = listen_socket(settings.host, settings.port)
    try:
        services = build(settings)
    except SettingsError as exc:
        fail(str(exc))
    except Exception as exc:  # database unreachable, bad URL...: one line, exit 2
        fail(
            f"cannot open the database {settings.effective_database_url!r}: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        )
    from rules.yarapack import YaraPackError

    try:  # fail fast: a rules folder that does not compile is bad configuration
        services.rules.reload(force=True)
    except YaraPackError as exc:
        fail(f"YARA rules: {exc}")
    admin_token = None
    with services.db.transaction() as session:
        fresh = TokenService.count(session) == 0
        if fresh and first_admin:
            admin_token, _ = services.tokens.create(
                session, Role.ADMIN, "admin", None, "system:first-start"
            )
    if fresh and demo:
        from vigia.demo import load_demo

        loaded = load_demo(services)
        typer.echo(
            f"datos de demostración: {loaded['entities']} entidades, "
            f"{loaded['indicators']} indicadores, "
            f"{loaded['observations']} observaciones, {loaded['alerts']} alertas",
            err=True,
        )
    from core import logs

    logs.configure(settings.log_format)
    jobs = scheduler.start(services)
    base = f"http://{settings.host}:{settings.port}"
    typer.echo(f"Vigía escuchando en {base}  (datos en {settings.data_dir.resolve()})", err=True)
    typer.echo(f"Consola: {base}/console/login", err=True)
    if admin_token:
        typer.echo("Token de administrador (se muestra una sola vez):", err=True)
        typer.echo(admin_token)
    try:
        config = uvicorn.Config(
            create_app(services),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            log_config=None,  # ours (logs.configure), so uvicorn's lines share the format
            # X-Forwarded-* only from VIGIA_TRUSTED_PROXIES (create_app), not uvicorn's default
            proxy_headers=False,
        )
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        jobs.shutdown(wait=False)
        services.close()


def listen_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port, or exit 2 with one line saying why not."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except OSError as exc:
        fail(f"no se puede escuchar en {host}: {exc}")
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            fail(f"el puerto {port} de {host} ya está en uso (otro proceso escucha en él)")
        fail(f"no se puede escuchar en {host}:{port}: {exc.strerror or exc}")
    return sock


def up_command(
    port: Annotated[int, typer.Option(help="port on 127.0.0.1")] = 8000,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    data_dir: Annotated[Path | None, typer.Option(help="data directory (VIGIA_DATA_DIR)")] = None,
    demo: Annotated[bool, typer.Option(help="load demo data into an empty database")] = True,
) -> None:
    """The whole platform in one process on the embedded default (SQLite)."""
    _run(host, port, data_dir, demo, first_admin=True)


def serve_command(
    port: Annotated[int, typer.Option()] = 8000,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    data_dir: Annotated[Path | None, typer.Option()] = None,
) -> None:
    """Serve the API and console on the configured database, without demo data."""
    _run(host, port, data_dir, demo=False, first_admin=True)
