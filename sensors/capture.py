"""Packet sources: pcap files, a watched folder of rotating captures, a live interface.

Each yields lists of (timestamp, linktype, frame): a file's a read chunk at a
time, a live interface's a packet at a time. An empty list is a tick, when
the source has been idle a moment (so the caller can flush and send). Each
returns when `stop` is set.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from sensors.decode import LINKTYPE_ETHERNET
from sensors.pcapfile import Record, read_batches

Packets = Iterator[list[Record]]
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap")
_PACKET_STATISTICS = 6  # SOL_PACKET option: (packets, drops) since the last read


FileDone = Callable[[Path], None]


def pcap_files(
    paths: list[Path], stop: threading.Event, on_done: FileDone | None = None
) -> Packets:
    for path in paths:
        for batch in read_batches(path):
            if stop.is_set():
                return
            yield batch
        if on_done is not None:
            on_done(path)


class FolderWatch:
    """Captures rotated into a folder (e.g. by `tcpdump -G`), each processed once, in order.

    The newest file is still being written, so it waits until a newer one
    appears (or `drain` is asked for). The last processed name is kept in a
    state file, so a restart resumes where it stopped.
    """

    def __init__(self, folder: Path, state: Path, poll_s: float = 1.0) -> None:
        self.folder, self.state, self.poll_s = folder, state, poll_s
        self.done = state.read_text().strip() if state.exists() else ""
        self.errors: list[str] = []

    def ready(self, drain: bool = False) -> list[Path]:
        files = sorted(
            p for p in self.folder.iterdir() if p.suffix in CAPTURE_SUFFIXES and p.name > self.done
        )
        return files if drain else files[:-1]

    def mark(self, path: Path) -> None:
        self.done = path.name
        tmp = self.state.with_suffix(".tmp")
        tmp.write_text(path.name + "\n")
        tmp.replace(self.state)

    def packets(
        self, stop: threading.Event, drain: bool = False, on_done: FileDone | None = None
    ) -> Packets:
        from sensors.pcapfile import CaptureError

        while not stop.is_set():
            files = self.ready(drain)
            for path in files:
                try:
                    for batch in read_batches(path):
                        yield batch
                        if stop.is_set():
                            return  # not marked: the file is read again, whole, next start
                except CaptureError as exc:  # a cut file: keep what it had, note it, go on
                    self.errors.append(str(exc))
                if on_done is not None:
                    on_done(path)
                self.mark(path)
            if drain:
                return
            yield []
            stop.wait(self.poll_s)


class LiveCapture:
    """A live interface through scapy, with a kernel BPF filter, promiscuous mode and snaplen."""

    def __init__(
        self, interface: str, bpf: str = "", snaplen: int = 65535, promisc: bool = True
    ) -> None:
        import scapy.arch  # noqa: F401 - picks this platform's capture sockets
        from scapy.config import conf

        self.interface = interface
        self.snaplen = snaplen
        self.sock = conf.L2listen(iface=interface, filter=bpf or None, promisc=promisc)
        self.sock.ins.settimeout(0.2)  # so a stop request is noticed
        self.kernel_packets = 0
        self.kernel_drops = 0

    def stats(self) -> tuple[int, int]:
        """Kernel counters (packets, drops), accumulated; Linux AF_PACKET only."""
        try:
            raw = self.sock.ins.getsockopt(263, _PACKET_STATISTICS, 8)  # SOL_PACKET
        except OSError:
            return self.kernel_packets, self.kernel_drops
        packets, drops = struct.unpack("II", raw)
        self.kernel_packets += packets
        self.kernel_drops += drops
        return self.kernel_packets, self.kernel_drops

    def packets(self, stop: threading.Event) -> Packets:
        recv = self.sock.ins.recv
        try:
            while not stop.is_set():
                try:
                    frame = recv(self.snaplen)
                except (TimeoutError, BlockingIOError):
                    yield []
                    continue
                yield [(time.time(), LINKTYPE_ETHERNET, frame)]
        finally:
            self.sock.close()
