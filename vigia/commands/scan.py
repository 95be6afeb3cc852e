"""`vigia scan PCAP… --indicators PATH… --yara PATH… [--out FILE]`."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from vigia.commands import fail
from vigia.commands.progress import Progress

if TYPE_CHECKING:
    from correlator.index import IndicatorIndex
    from correlator.scanindex import FileCount
    from rules.indicator import Indicator
    from rules.sources import LoadResult


def scan_command(
    pcaps: Annotated[list[Path], typer.Argument(help="pcap or pcapng files")],
    indicators: Annotated[
        list[Path] | None,
        typer.Option(
            "--indicators", "-i", help="MISP event JSON, MISP feed folder, Zeek intel file or CSV"
        ),
    ] = None,
    yara_paths: Annotated[
        list[Path] | None, typer.Option("--yara", "-y", help="YARA rule file or folder")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="alerts file (default stdout)")
    ] = None,
    window: Annotated[int, typer.Option(help="dedup window in seconds")] = 3600,
    observer: Annotated[str, typer.Option(help="observer.name on the alerts")] = "vigia-scan",
    deep: Annotated[bool, typer.Option(help="also a tshark pass for DTLS and QUIC")] = False,
    warninglists: Annotated[
        bool, typer.Option(help="keep MISP warninglist values (resolvers, top sites...) out")
    ] = False,
) -> None:
    """Offline, one shot: pcaps in, ECS alerts as JSON lines out."""
    from correlator import scanindex
    from correlator.matcher import Matcher
    from correlator.offline import check_captures, scan
    from rules.sources import IndicatorFileError, stream_indicator_file
    from rules.yarapack import YaraPackError, compile_pack
    from sensors.pcapfile import CaptureError

    if not indicators and not yara_paths:
        fail("nothing to match: give --indicators and/or --yara")
    if window < 1:
        fail("--window must be at least 1 second")
    _mmap_threshold(128 << 10)  # before the index is built or read
    from rules.warninglists import default_cache_dir

    cache_dir = default_cache_dir()
    try:
        check_captures(pcaps)
        # The same files scanned again: their compiled index is mapped, not rebuilt.
        name = scanindex.name_of(indicators or [], _lists_release() if warninglists else None)
        hit = scanindex.load(cache_dir, name) if name else None
        opened = [] if hit else [stream_indicator_file(p) for p in indicators or []]
        loaded = [r for r, _ in opened]
        # MISP `yara` attributes compile with --yara's files into one pack (below)
        loaded_yara = {ns: text for r in loaded for ns, text in r.yara_rules.items()}
        pack = (
            compile_pack(list(yara_paths or []), extra=loaded_yara)
            if yara_paths or loaded_yara
            else None
        )
    except (CaptureError, IndicatorFileError, YaraPackError) as exc:
        fail(str(exc))
    if hit is not None:
        index, counts = hit
    else:
        index, counts = _build(opened, warninglists, cache_dir)
    for fc in counts:
        skipped = sum(fc.skipped.values())
        typer.echo(
            f"indicators: {fc.source} ({fc.format}): {fc.loaded} loaded"
            + (f", {skipped} skipped" if skipped else "")
            + (" (compiled index kept from an earlier scan)" if hit else ""),
            err=True,
        )
    matcher = Matcher(index, pack)

    try:
        sink = out.open("wb") if out else sys.stdout.buffer
    except OSError as exc:
        fail(f"{out}: cannot write: {exc.strerror}")
    total = sum(p.stat().st_size for p in pcaps)
    with Progress(byte_counts=True) as bar:
        advance = bar.task("escaneando", total)
        alerts, summary = scan(pcaps, matcher, window, observer, progress=advance, deep=deep)
    _write(sink, alerts)
    if out:
        sink.close()
    if hit is None and name and not loaded_yara:  # a MISP event's YARA rules: not in it
        scanindex.keep(cache_dir, name, index, counts)  # for the next scan of these files
    c = summary.counters
    by_type = ", ".join(f"{k} {v}" for k, v in sorted(summary.alerts.items())) or "none"
    typer.echo(
        f"scanned {summary.files} file(s): {c.packets} packets ({c.decoded} decoded, "
        f"{sum(c.malformed.values())} malformed, {c.not_ip} not IP), {c.flows} flows, "
        f"{c.observations} observations, {index.size} indicators"
        + (f" and {index.whitelist.size} whitelisted" if index.whitelist.size else "")
        + "; "
        f"alerts {len(alerts)} ({by_type}) from {sum(summary.hits.values())} hits; "
        f"{_suppressed(matcher.suppressed)}"
        f"{summary.elapsed_s:.2f} s, {summary.packets_per_s:,.0f} packets/s",
        err=True,
    )
    if summary.errors:
        fail(
            summary.errors[0]
            + (f" (and {len(summary.errors) - 1} more)" if len(summary.errors) > 1 else "")
        )


def _build(
    opened: list[tuple[LoadResult, Iterable[Indicator]]], warninglists: bool, cache_dir: Path
) -> tuple[IndicatorIndex, list[FileCount]]:
    """The index of the opened files, indexed as read: a million CSV rows never stand
    as a million records at once; and what each file gave."""
    from correlator import scanindex
    from correlator.index import IndicatorIndex
    from rules.sources import IndicatorFileError

    lists = None
    if warninglists:
        from rules.warninglists import Warnings

        lists = Warnings.bundled(cache_dir)
    index = IndicatorIndex()
    counts = []
    try:
        for r, inds in opened:
            n = 0
            for ind in inds:
                caught = lists.catching(ind) if lists is not None else None
                if caught is not None:
                    r.skipped[f"warninglist: {caught}"] += 1
                    continue
                index.add(ind)
                n += 1
            counts.append(scanindex.counted(r.source, r.format, n, r.skipped))
    except IndicatorFileError as exc:
        fail(str(exc))
    return index, counts


def _mmap_threshold(size: int) -> None:
    """Blocks of `size` or more in their own mappings, given back when freed (glibc).

    Issue 17, the scan's peak memory: a million indicators fill the index's dicts
    together, row by row, so each table's old copy, freed as it grows, left a hole
    in the heap among the others' that no later table fitted (glibc's threshold
    starts at 128 KiB but rises to the largest block freed, up to 32 MiB). Those
    holes stayed resident: ~4 MB more at the first scan's peak than from the kept
    index. At 1 MiB the tables below it still left holes, 0 or 3.5 MB by layout.
    Left so for the packets: raised to 32 MiB after the index, a 134 MB pcap's scan
    peaked 2.3 MB higher; at 128 KiB it spends ~0.1 s more of system time on it."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):  # not glibc: its own allocator's way
        return
    mallopt(-3, size)  # M_MMAP_THRESHOLD (malloc.h); once set, no longer dynamic


def _lists_release() -> str:
    """Which warninglists `--warninglists` applies: the bundled package's release."""
    from importlib import metadata

    try:
        return f"pymispwarninglists {metadata.version('pymispwarninglists')}"
    except metadata.PackageNotFoundError:
        return "pymispwarninglists"


def _suppressed(s: Any) -> str:
    """Hits a whitelist or an if_in kept from alerting, by whitelisting source ("" if none)."""
    parts = []
    if s.by_whitelist:
        by = ", ".join(f"{src} {n}" for src, n in sorted(s.by_whitelist.items()))
        parts.append(f"{sum(s.by_whitelist.values())} suppressed by whitelist ({by})")
    if s.outside_if_in:
        parts.append(f"{s.outside_if_in} outside meta.if_in")
    return "hits " + ", ".join(parts) + "; " if parts else ""


def _write(sink: Any, alerts: list[dict[str, Any]]) -> None:
    for a in alerts:
        sink.write(orjson.dumps(a) + b"\n")
    sink.flush()
