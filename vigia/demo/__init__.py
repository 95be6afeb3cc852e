"""Demo data for a first start: a few entities, a MISP event and a real trace.

wikipedia.pcap and bro-get.pcap come from Zeek's test traces (BSD-3-Clause,
see LICENSE-zeek);
demo-event.json is ours, written for that trace. constituency.py adds about 300
made-up public entities with eighteen months of certification history.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from certification.registry import Registry
from core.clock import utcnow
from core.tokens import Role
from correlator.fleet import record_heartbeat
from correlator.intake import take_in
from rules.sources import load_indicator_file
from sensors.engine import Sensor, SensorConfig
from sensors.observation import Observation
from sensors.pcapfile import read_packets
from vigia.demo import constituency
from vigia.wiring import Services

ACTOR = "system:demo"
SENSOR_NAME = "sensor-demo-01"
ENTITIES = [
    (
        "min-demo",
        "Ministerio de Demostración",
        "central",
        ["141.142.220.0/24"],
        ["demo.gob.example"],
    ),
    (
        "gam-ejemplo",
        "Gobierno Autónomo Municipal de Ejemplo",
        "municipal",
        ["141.142.228.0/24"],
        ["ejemplo.gob.example"],
    ),
]


def _file(name: str) -> Path:
    return Path(str(resources.files(__package__).joinpath(name)))


def load_demo(services: Services) -> dict[str, int]:
    """Entities, indicators and the demo trace pushed through the sensor path."""
    with services.db.transaction() as session:
        for eid, name, level, nets, doms in ENTITIES:
            Registry.add(session, eid, name, level, nets, doms, ACTOR)
        Registry.set_contacts(
            session,
            "min-demo",
            [{"name": "Oficial de Seguridad", "email": "seguridad@demo.gob.example"}],
            "",
            "",
            ACTOR,
        )  # notices queue up; they go out once VIGIA_SMTP_HOST names a mail server
        # The two entities above keep the trace's own networks (the alerts need them);
        # the constituency's are all documentation ranges.
        entities = len(constituency.load(session, utcnow()).entities) + len(ENTITIES)
        result = load_indicator_file(_file("demo-event.json"))
        take_in(
            session,
            result,
            ACTOR,
            0,
            services.settings.dedup_window_s,
            source_name="demo-event.json",
        )  # stored, audited, on the sources page
        services.tokens.create(session, Role.SENSOR, SENSOR_NAME, None, ACTOR)

    observations: list[Observation] = []
    sensor = Sensor(SensorConfig(observer=SENSOR_NAME), observations.append)
    for trace in ("wikipedia.pcap", "bro-get.pcap"):
        for ts, linktype, frame in read_packets(_file(trace)):
            sensor.packet(ts, linktype, frame)
        sensor.finish()
    alerts = 0
    for n, start in enumerate(range(0, len(observations), 50)):
        batch = observations[start : start + 50]
        res = services.ingest.ingest(f"demo-{n:04d}", [o.to_ecs() for o in batch])
        alerts += res.alerts
    c = sensor.counters
    with services.db.transaction() as session:  # the demo sensor's heartbeat, as it would send
        record_heartbeat(
            session,
            SENSOR_NAME,
            {
                "packets": c.packets,
                "decoded": c.decoded,
                "observations": c.observations,
                "observations_shipped": len(observations),
                "spooled_batches": 0,
                "kernel_drops": 0,
            },
        )
    return {
        "indicators": len(result.indicators),
        "observations": len(observations),
        "alerts": alerts,
        "entities": entities,
    }
