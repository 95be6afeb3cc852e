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
