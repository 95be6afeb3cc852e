"""YARA where the bytes are: the centre's running pack, on the contents the sensor extracts.

The centre serves its pack as rule sources (`GET /api/v1/rules/pack`, see
sensors.rulepack); the sensor compiles them itself, so a pack its own libyara
cannot compile is refused here and the one it had keeps scanning. Every HTTP
body (both ways), mail attachment, FTP transfer and reassembled file reaches
`scan()` through the engine's content hand-off. A hit travels to the centre
as an observation, one per rule: the rule and its metadata under ECS `rule.*`,
the file's hashes, name, type and size beside them, on the flow it came in.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sensors.flow import Content
from sensors.observation import Observation

try:  # the `sensor` extra brings yara-python; without it the sensor runs, unscanned
    import yara
except ImportError:  # pragma: no cover - exercised only on an install without the extra
    yara = None

# The file's values a hit carries along, so the alert says what was scanned.
_FILE_FIELDS = (
    "file.name",
    "file.mime_type",
    "file.size",
    "file.hash.md5",
    "file.hash.sha1",
    "file.hash.sha256",
)
_META = (
    ("description", "rule.description"),
    ("reference", "rule.reference"),
    ("author", "rule.author"),
)


def available() -> bool:
    """Whether this install can scan (the `sensor` extra brings yara-python)."""
    return yara is not None


class PackError(Exception):
    """A pack the sensor will not run: one line, why."""


@dataclass(frozen=True)
class SensorPack:
    """A compiled pack and what names it (ruleset = name@version, as the centre says)."""

    name: str
    version: str
    sha256: str  # of the sources: what the sensor asks the centre about (ETag)
    rules: Any  # yara.Rules
    count: int

    @property
    def ruleset(self) -> str:
        return f"{self.name}@{self.version}"


def sources_digest(sources: dict[str, str]) -> str:
    """A pack's digest: SHA-256 over its namespaces and texts in name order (the centre
    computes it with this same function when it ships the pack)."""
    h = hashlib.sha256()
    for namespace in sorted(sources):
        h.update(namespace.encode() + b"\0" + sources[namespace].encode() + b"\0")
    return h.hexdigest()


def compile_shipped(doc: Any) -> SensorPack:
    """Check and compile a pack as the centre ships it; PackError says why not."""
    if yara is None:
        raise PackError("yara-python is not installed: pip install 'vigia[sensor]'")
    if not isinstance(doc, dict):
        raise PackError("the pack is not a JSON object")
    sources, externals = doc.get("sources"), doc.get("externals") or {}
    name, version, digest = doc.get("name"), doc.get("version"), doc.get("sha256")
    if not isinstance(sources, dict) or not sources:
        raise PackError("the pack has no rule sources")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in sources.items()):
        raise PackError("the pack's sources must be texts by namespace")
    if not isinstance(externals, dict) or not all(isinstance(k, str) for k in externals):
        raise PackError("the pack's externals must be an object")
    if not (isinstance(name, str) and isinstance(version, str) and isinstance(digest, str)):
        raise PackError("the pack lacks its name, version or sha256")
    if sources_digest(sources) != digest:
        raise PackError(f"pack {name}@{version}: its sources do not match its sha256")
    try:
        rules = yara.compile(sources=sources, externals=externals)
    except yara.Error as exc:
        raise PackError(f"pack {name}@{version} does not compile here: {exc}") from None
    return SensorPack(name, version, digest, rules, sum(1 for _ in rules))


@dataclass
class ScanCounters:
    scans: int = 0  # contents scanned
    hits: int = 0  # rule matches (observations sent)
    errors: int = 0  # scans that failed (timeouts included), counted, never fatal
    unscanned: int = 0  # contents that came while no pack was loaded
    repeats: int = 0  # contents already scanned (same bytes, same names): the verdict reused


class YaraScanner:
    """Scans each content with the current pack and hands on one observation per rule hit.

    `pack` is read once per scan and replaced whole by `swap()` from another
    thread, so a swap never stops the packet path and never tears a scan."""

    def __init__(
        self,
        hand_on: Callable[[Observation], None],
        timeout_s: int = 5,
        max_bytes: int = 0,
        remember: int = 4096,
    ) -> None:
        self.hand_on = hand_on
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes  # 0: the engine's own limits bound what comes here
        self.pack: SensorPack | None = None
        self.counters = ScanCounters()
        # The verdicts of the last `remember` contents, by SHA-256 (which the engine has
        # already computed) and the names the rules may see: the same script, image or
        # update fetched by a thousand clients is scanned once per pack.
        self.remember = remember
        self._verdicts: OrderedDict[tuple[str, str, str, str], list[Any]] = OrderedDict()
        self._verdicts_of: SensorPack | None = None

    def swap(self, pack: SensorPack) -> None:
        self.pack = pack

    def scan(self, content: Content) -> None:
        pack = self.pack
        if pack is None:
            self.counters.unscanned += 1
            return
        data = content.data
        if self.max_bytes and len(data) > self.max_bytes:
            data = data[: self.max_bytes]
        obs = content.observation
        externals = {
            "filename": (obs.values.get("file.name") or [""])[0],
            "protocol": obs.protocol or "",
            "source": content.source,
        }
        found = self._known(pack, obs, externals)
        if found is None:
            self.counters.scans += 1
            try:
                found = pack.rules.match(data=data, timeout=self.timeout_s, externals=externals)
            except Exception:  # yara.TimeoutError and friends: counted, the packets go on
                self.counters.errors += 1
                return
            self._keep(obs, externals, found)
        for match in found:
            self.counters.hits += 1
            self.hand_on(hit_observation(obs, match, pack.ruleset))

    def _key(self, obs: Observation, externals: dict[str, str]) -> tuple[str, str, str, str]:
        sha256 = (obs.values.get("file.hash.sha256") or [""])[0]
        return (sha256, externals["filename"], externals["protocol"], externals["source"])

    def _known(
        self, pack: SensorPack, obs: Observation, externals: dict[str, str]
    ) -> list[Any] | None:
        if not self.remember:
            return None
        if self._verdicts_of is not pack:  # a new pack: earlier verdicts no longer hold
            self._verdicts.clear()
            self._verdicts_of = pack
            return None
        key = self._key(obs, externals)
        found = self._verdicts.get(key) if key[0] else None
        if found is not None:
            self._verdicts.move_to_end(key)
            self.counters.repeats += 1
        return found

    def _keep(self, obs: Observation, externals: dict[str, str], found: list[Any]) -> None:
        key = self._key(obs, externals)
        if self.remember and key[0]:
            self._verdicts[key] = found
            if len(self._verdicts) > self.remember:
                self._verdicts.popitem(last=False)


def hit_observation(file_obs: Observation, match: Any, ruleset: str) -> Observation:
    """One rule's hit on a file, on the file's flow, with the file's values beside it."""
    hit = Observation(
        file_obs.timestamp,
        file_obs.observer,
        file_obs.src_ip,
        file_obs.dst_ip,
        file_obs.src_port,
        file_obs.dst_port,
        file_obs.transport,
        file_obs.community_id,
        file_obs.protocol,
    )
    for name in _FILE_FIELDS:
        for value in file_obs.values.get(name, ()):
            hit.add(name, value)
    hit.add("rule.name", match.rule)
    hit.add("rule.ruleset", ruleset)
    meta = match.meta or {}
    for key, ecs in _META:
        if meta.get(key):
            hit.add(ecs, str(meta[key]))
    for tag in match.tags:
        hit.add("rule.category", tag)
    return hit
