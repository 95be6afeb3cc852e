"""Test factories: observation documents as a sensor would ship them."""

from __future__ import annotations

from typing import Any

from sensors.observation import Observation


def observation(
    src: str = "10.1.1.5",
    dst: str = "203.0.113.9",
    ts: float = 1_700_000_000.0,
    observer: str = "sensor-1",
    **values: str | list[str],
) -> dict[str, Any]:
    """An ECS observation document; keyword names use `__` for dots (dns__question__name)."""
    obs = Observation(
        timestamp=ts,
        observer=observer,
        src_ip=src,
        dst_ip=dst,
        src_port=40000,
        dst_port=53,
        transport="udp",
        community_id="1:test",
    )
    for key, val in values.items():
        for v in [val] if isinstance(val, str) else val:
            obs.add(key.replace("__", "."), v)
    if values:
        obs.protocol = "dns"
    return obs.to_ecs()


# -- the sensor engine: packets of one conversation, as mitmproxy's tflow ---------------


class Conversation:
    """The frames of one TCP conversation (or UDP exchange) between a client and a
    server, built up turn by turn: `frames` is what Sensor.feed takes.

        talk = Conversation(dport=21).handshake().send(b"USER a\\r\\n").reply(b"331\\r\\n")
        sensor.feed(talk.close().frames)
    """

    def __init__(
        self,
        client: str = "10.0.0.1",
        server: str = "10.0.0.2",
        sport: int = 40000,
        dport: int = 80,
        udp: bool = False,
        ts: float = 1_700_000_000.0,
    ) -> None:
        self.client, self.server, self.sport, self.dport, self.udp = (
            client,
            server,
            sport,
            dport,
            udp,
        )
        self.ts = ts
        self.seq = {True: 1000, False: 5000}  # the next sequence number, by from_client
        self.frames: list[tuple[float, int, bytes]] = []

    def _frame(self, from_client: bool, flags: str = "", data: bytes = b"") -> Conversation:
        from scapy.layers.inet import IP, TCP, UDP
        from scapy.layers.l2 import Ether

        from sensors import decode as dec

        src, dst = (self.client, self.server) if from_client else (self.server, self.client)
        sport, dport = (self.sport, self.dport) if from_client else (self.dport, self.sport)
        if self.udp:
            layer = UDP(sport=sport, dport=dport)
        else:
            ack = self.seq[not from_client] if "S" not in flags or "A" in flags else 0
            layer = TCP(sport=sport, dport=dport, flags=flags, seq=self.seq[from_client], ack=ack)
            self.seq[from_client] += len(data) + (1 if "S" in flags or "F" in flags else 0)
        self.ts += 0.001
        frame = bytes(Ether() / IP(src=src, dst=dst) / layer / data)
        self.frames.append((self.ts, dec.LINKTYPE_ETHERNET, frame))
        return self

    def handshake(self) -> Conversation:
        return self._frame(True, "S")._frame(False, "SA")._frame(True, "A")

    def send(self, data: bytes) -> Conversation:
        """Bytes from the client (a datagram over UDP)."""
        return self._frame(True, "PA", data)

    def reply(self, data: bytes) -> Conversation:
        """Bytes from the server."""
        return self._frame(False, "PA", data)

    def fin(self, from_client: bool = True) -> Conversation:
        return self._frame(from_client, "FA")

    def close(self) -> Conversation:
        """Both sides' FIN, the client's first."""
        return self.fin(True).fin(False)

    def reset(self, from_client: bool = True) -> Conversation:
        return self._frame(from_client, "R")


class SensorRun:
    """A Sensor with what it emitted at hand: observations, contents (source, bytes)."""

    def __init__(self, **kwargs: Any) -> None:
        from sensors.engine import Sensor, SensorConfig

        self.observations: list[Observation] = []
        self.contents: list[tuple[str, bytes]] = []
        config = kwargs.pop("config", SensorConfig(observer="sensor-1"))
        self.sensor = Sensor(
            config,
            self.observations.append,
            lambda c: self.contents.append((c.source, c.data)),
            **kwargs,
        )

    def feed(self, *talks: Conversation, finish: bool = True) -> SensorRun:
        for talk in talks:
            self.sensor.feed(talk.frames)
        if finish:
            self.sensor.finish()
        return self

    def values(self, protocol: str | None = None) -> list[dict[str, list[str]]]:
        """Each observation's values (of one protocol), the flow records left out."""
        return [
            o.values
            for o in self.observations
            if o.values and (protocol is None or o.protocol == protocol)
        ]


def endpoints(
    proto: int = 6,
    src: str = "10.0.0.1",
    sport: int = 40000,
    dst: str = "10.0.0.2",
    dport: int = 80,
) -> Any:
    """A flow's Endpoints (sensors.analyzer), as an analyzer is given them."""
    from sensors.analyzer import Endpoints

    return Endpoints(proto, src, sport, dst, dport, "1:test")
