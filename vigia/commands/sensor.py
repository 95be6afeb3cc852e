"""`vigia sensor run`: the appliance. Needs only the base install (no server extra).

`vigia sensor resend` puts the batches the centre refused back in the queue,
once the cause (token, observer name) is fixed.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vigia.commands import fail

if TYPE_CHECKING:
    from sensors.capture import Packets
    from sensors.ship import Shipper

sensor_app = typer.Typer(help="The sensor appliance: capture, extract, ship.", no_args_is_help=True)


@sensor_app.command("run")
def run(
    interface: Annotated[str | None, typer.Option(help="capture live on this interface")] = None,
    pcap: Annotated[
        list[Path] | None, typer.Option(help="read these capture files, in order: --pcap A B C")
    ] = None,
    watch: Annotated[Path | None, typer.Option(help="folder of rotating captures")] = None,
    server: Annotated[str | None, typer.Option(help="the centre, e.g. https://vigia:8000")] = None,
    token_file: Annotated[Path | None, typer.Option(help="file holding the sensor token")] = None,
    config: Annotated[Path | None, typer.Option(help=r"TOML file with a \[sensor] table")] = None,
    observer: Annotated[str | None, typer.Option(help="this sensor's name")] = None,
    spool_dir: Annotated[Path | None, typer.Option(help="on-disk spool and state")] = None,
    bpf: Annotated[str | None, typer.Option(help="kernel BPF filter (live capture)")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Prometheus port on 127.0.0.1")] = None,
    drain: Annotated[
        bool, typer.Option(help="with --watch: process every file, then exit")
    ] = False,
    more_pcaps: Annotated[
        list[Path] | None,
        typer.Argument(metavar="FILE", help="more capture files, after --pcap", show_default=False),
    ] = None,
) -> None:
    """Capture, extract observations and ship them to the centre; spool when it is away.

    A run over files stops (exit 1, one line) when the centre refuses its token or name."""
    from core import logs
    from sensors import compiled, metrics, yarascan
    from sensors.capture import FolderWatch, LiveCapture, pcap_files
    from sensors.config import ConfigError, load
    from sensors.pcapfile import CaptureError
    from sensors.runner import SensorService, quiet_gc

    if more_pcaps:  # `--pcap A B C`, as the README shows it (click takes one value a flag)
        if not pcap:
            fail(f"{more_pcaps[0]}: capture files are read with --pcap (--pcap A B C)")
        if len(pcap) > 1:
            fail("give the files after one --pcap (--pcap A B C) or each after its own, not both")
        pcap = [*pcap, *more_pcaps]
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
    if settings.yara and not yarascan.available():  # runs, without YARA on the contents
        typer.echo(
            "warning: yara-python is missing, contents go unscanned: pip install 'vigia[sensor]'",
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
    logs.configure(os.environ.get("VIGIA_LOG_FORMAT", "text"))  # refusals, reminders
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line for every batch sent
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
    shipper = service.shipper
    if live is None and (pcap or drain):  # a run over files: a wrong token stops it
        packets = _until_refused(packets, shipper)
    error = None
    quiet_gc()  # this process is the sensor's own: collector passes on its clock (~10 %)
    try:
        service.run(packets, stop)
    except CaptureError as exc:  # what was read before the fault is shipped or spooled
        error = str(exc)
    c = service.counters()
    sc = shipper.counters
    last = f" (last: {sc.last_failure})" if sc.last_failure else ""
    typer.echo(
        f"sensor {settings.observer}: {c['packets']} packets, {c['observations']} observations, "
        f"{c['observations_shipped']} shipped, {c['spooled_batches']} batches spooled, "
        f"{sc.refused} refused, {sc.send_failures} send failures{last}",
        err=True,
    )
    if shipper.setup_refusal is not None and live is None and (pcap or drain):
        fail(shipper.setup_refusal.advice(), code=1)
    if folder is not None and folder.errors:
        error = folder.errors[0]
    if error:
        fail(error)


def _until_refused(packets: Packets, shipper: Shipper) -> Packets:
    """The packets, until the centre refuses the token, its name or the address: every
    batch after would be refused alike, so a run over files stops there (what was sent
    is set aside). Checked before the source is asked for more, so a watched file cut
    short is not marked done."""
    it = iter(packets)
    while shipper.setup_refusal is None:
        chunk = next(it, None)
        if chunk is None:
            return
        yield chunk


@sensor_app.command("resend")
def resend(
    spool_dir: Annotated[Path | None, typer.Option(help="the sensor's spool and state")] = None,
    config: Annotated[Path | None, typer.Option(help=r"TOML file with a \[sensor] table")] = None,
    observer: Annotated[
        str | None,
        typer.Option(help="name them as this sensor (after a refusal for the observer name)"),
    ] = None,
) -> None:
    """Put the batches the centre refused back in the queue (after fixing the cause);
    the next `vigia sensor run` on this spool sends them first."""
    from sensors.config import ConfigError, load
    from sensors.ship import rename_observer
    from sensors.spool import Spool

    try:
        settings = load(config, spool_dir=spool_dir)
    except ConfigError as exc:
        fail(str(exc))
    folder = settings.spool_dir / "batches"
    if not folder.is_dir():
        fail(f"{settings.spool_dir}: no spool here (no {folder.name}/ folder)")
    spool = Spool(folder, settings.spool_max_bytes, settings.spool_policy)
    try:
        n = spool.resend(None if observer is None else lambda b: rename_observer(b, observer))
    except ValueError as exc:  # a batch that is not gzip JSON: left as it was
        fail(str(exc))
    typer.echo(f"{n} refused batches back in the queue of {folder}", err=True)
