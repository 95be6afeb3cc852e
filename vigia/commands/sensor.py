"""`vigia sensor run`: the appliance. Needs only the base install (no server extra)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from vigia.commands import fail

sensor_app = typer.Typer(help="The sensor appliance: capture, extract, ship.", no_args_is_help=True)


@sensor_app.command("run")
def run(
    interface: Annotated[str | None, typer.Option(help="capture live on this interface")] = None,
    pcap: Annotated[list[Path] | None, typer.Option(help="read these capture files")] = None,
    watch: Annotated[Path | None, typer.Option(help="folder of rotating captures")] = None,
    server: Annotated[str | None, typer.Option(help="the centre, e.g. https://vigia:8000")] = None,
    token_file: Annotated[Path | None, typer.Option(help="file holding the sensor token")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML file with a [sensor] table")] = None,
    observer: Annotated[str | None, typer.Option(help="this sensor's name")] = None,
    spool_dir: Annotated[Path | None, typer.Option(help="on-disk spool and state")] = None,
    bpf: Annotated[str | None, typer.Option(help="kernel BPF filter (live capture)")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Prometheus port on 127.0.0.1")] = None,
    drain: Annotated[
        bool, typer.Option(help="with --watch: process every file, then exit")
    ] = False,
) -> None:
    """Capture, extract observations and ship them to the centre; spool when it is away."""
    from sensors import compiled, metrics
    from sensors.capture import FolderWatch, LiveCapture, pcap_files
    from sensors.config import ConfigError, load
    from sensors.pcapfile import CaptureError
    from sensors.runner import SensorService, quiet_gc

    sources = [x for x in (interface, pcap, watch) if x]
    if len(sources) != 1:
        fail("give exactly one of --interface, --pcap or --watch")
    overrides: dict[str, Any] = {
        "server": server,
        "token_file": token_file,
        "observer": observer,
        "spool_dir": spool_dir,
        "bpf": bpf,
        "metrics_port": metrics_port,
        "interface": interface,
    }
    try:
        settings = load(config, **overrides)
        if not settings.server:
            raise ConfigError("server: the sensor needs --server (or server = in the config)")
        settings.token()
    except ConfigError as exc:
        fail(str(exc))
    if compiled.stale() or not compiled.is_compiled():  # runs, at half the speed
        typer.echo(
            "warning: the sensor engine runs as plain Python (not built, or its build is "
            "older than its source): pip install . (or python setup.py build_ext --inplace)",
            err=True,
        )

    stop = threading.Event()
    live = None
    try:
        if interface:
            live = LiveCapture(interface, settings.bpf, settings.snaplen, settings.promisc)
    except (OSError, ValueError) as exc:  # no such interface, no permission, bad filter
        fail(f"{interface}: cannot capture: {exc}")
    service = SensorService.build(settings, live)
    if settings.metrics_port:
        metrics.serve(settings.metrics_port, service.counters, settings.observer)

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    folder = None
    on_done = service.deep_file if settings.deep else None
    if live is not None:
        packets = live.packets(stop)
    elif pcap:
        packets = pcap_files(list(pcap), stop, on_done)
    else:
        assert watch is not None
        if not watch.is_dir():
            fail(f"{watch}: not a folder")
        folder = FolderWatch(watch, settings.spool_dir / "watch.state")
        packets = folder.packets(stop, drain=drain, on_done=on_done)
    error = None
    quiet_gc()  # this process is the sensor's own: collector passes on its clock (~10 %)
    try:
        service.run(packets, stop)
    except CaptureError as exc:  # what was read before the fault is shipped or spooled
        error = str(exc)
    c = service.counters()
    typer.echo(
        f"sensor {settings.observer}: {c['packets']} packets, {c['observations']} observations, "
        f"{c['observations_shipped']} shipped, {c['spooled_batches']} batches spooled",
        err=True,
    )
    if folder is not None and folder.errors:
        error = folder.errors[0]
    if error:
        fail(error)
