"""MISP warninglists keep well-known values out, and say which list caught each."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.tokens import Role
from rules.indicator import Indicator
from rules.sources import LoadResult
from rules.warninglists import Warnings
from tests.conftest import bearer, corpus, make_token
from tests.test_scan import alerts_of, vigia
from vigia.wiring import Services


@pytest.fixture(scope="module")
def corpus_lists() -> Warnings:
    return Warnings.from_folder(corpus("misp", "warninglists", "lists"))


@pytest.mark.parametrize(
    ("itype", "value", "caught"),
    [
        ("ip-dst", "8.8.8.8", "List of known IPv4 public DNS resolvers"),
        ("md5", "d41d8cd98f00b204e9800998ecf8427e", "List of known hashes for empty files"),
        ("hostname", "evil-c2.example", None),
        ("md5", "8.8.8.8", None),  # a list applies only to its own attribute types
    ],
)
def test_lists_from_misp_repository(
    corpus_lists: Warnings, itype: str, value: str, caught: str | None
) -> None:
    found = corpus_lists.catching(Indicator(itype, value, "t"))
    if caught is None:
        assert found is None
    else:  # several lists may hold a value; the first one found is named
        assert found is not None and found.startswith(caught.split(" for ")[0])


def test_apply_counts_by_list(corpus_lists: Warnings) -> None:
    r = LoadResult(
        "x", "csv", [Indicator("ip-dst", "8.8.8.8", "t"), Indicator("ip-dst", "203.0.113.5", "t")]
    )
    corpus_lists.apply(r)
    assert [i.value for i in r.indicators] == ["203.0.113.5"]
    assert dict(r.skipped) == {"warninglist: List of known IPv4 public DNS resolvers": 1}


def test_upload_applies_bundled_lists(client: TestClient, services: Services) -> None:
    token = make_token(services, Role.ANALYST)
    r = client.post(
        "/api/v1/indicators",
        headers=bearer(token),
        files={"file": ("i.csv", b"type,value\nip-dst,8.8.8.8\nip-dst,203.0.113.5\n")},
    )
    assert r.status_code == 201
    body = r.json()
    assert body["loaded"] == 1
    assert body["skipped"] == {"warninglist: List of known IPv4 public DNS resolvers": 1}


def test_scan_flag(tmp_path: Path) -> None:
    pcap = corpus("zeek-traces", "dns-http", "opt.basic", "pcap", "wikipedia.pcap")
    ind = tmp_path / "i.csv"
    ind.write_text("type,value\nhostname,upload.wikimedia.org\ndomain,wikipedia.org\n")
    plain = alerts_of(vigia("scan", pcap, "-i", ind).stdout)
    listed = vigia("scan", pcap, "-i", ind, "--warninglists")
    assert {a["threat"]["enrichments"][0]["indicator"]["value"] for a in plain} == {
        "upload.wikimedia.org",
        "wikipedia.org",
    }
    remaining = {
        a["threat"]["enrichments"][0]["indicator"]["value"] for a in alerts_of(listed.stdout)
    }
    assert "wikipedia.org" not in remaining  # a top site: on the lists
    assert "skipped" in listed.stderr


def _every_value(folder: Path) -> list[tuple[str, str]]:
    """(type, value) for every listed value, typed as its list matches."""
    import json

    out = []
    for p in sorted(folder.glob("*/list.json")):
        doc = json.loads(p.read_bytes())
        kind = (doc.get("matching_attributes") or ["domain"])[0]
        out += [(kind, str(v)) for v in doc.get("list", ())]
    return out


def _children_cpu() -> float:
    import resource

    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def test_the_lists_compile_in_a_child_into_the_cache_and_answer_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A centre's lists are compiled by a child process (its seconds of pure Python
    would hold the serving process's GIL), written to the cache, read back: the
    same answers as lists compiled in this process, for every listed value."""
    import rules.warninglists as wl

    folder = corpus("misp", "warninglists", "lists")
    monkeypatch.setattr(wl, "_COMPILED", {})  # not the module's copy from another test
    before = _children_cpu()
    made = Warnings.from_folder(folder, tmp_path / "cache")
    assert _children_cpu() > before  # a child did the work
    assert len(list((tmp_path / "cache").glob("warninglists-*.bin"))) == 1
    monkeypatch.setattr(wl, "_COMPILED", {})
    here = Warnings.from_folder(folder)  # no cache: compiled in this process
    values = _every_value(folder)
    assert len(values) > 1000
    for kind, value in values:
        ind = Indicator(kind, value, "t")
        assert made.catching(ind) == here.catching(ind), (kind, value)


def test_an_unwritable_cache_still_gives_the_lists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child cannot write its file (the cache folder is a file): the lists are
    compiled in this process instead, and answer."""
    import rules.warninglists as wl

    monkeypatch.setattr(wl, "_COMPILED", {})
    blocked = tmp_path / "cache"
    blocked.write_text("not a folder")
    made = Warnings.from_folder(corpus("misp", "warninglists", "lists"), blocked)
    assert made.catching(Indicator("ip-dst", "8.8.8.8", "t")) is not None


def _compiling(cached_dir: Path) -> list[int]:
    """Pids of `python -m rules.warninglists` children writing into this folder."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"rules.warninglists" in cmd and any(str(cached_dir).encode() in c for c in cmd):
            out.append(int(entry.name))
    return out


def test_the_compiling_child_ends_with_the_process_that_asked(tmp_path: Path) -> None:
    """A centre stopped (here killed) while its lists compile leaves no child behind:
    the child sees its parent gone and exits."""
    import signal
    import subprocess
    import sys
    import time

    cache = tmp_path / "cache"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from rules.warninglists import Warnings; "
            "Warnings.bundled(Path(sys.argv[1]))",
            str(cache),
        ]
    )
    try:
        deadline = time.monotonic() + 30
        while not _compiling(cache):
            assert parent.poll() is None and time.monotonic() < deadline, "no child seen"
            time.sleep(0.05)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 5
    while _compiling(cache) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _compiling(cache) == []
    assert not list(cache.glob("*.bin"))  # stopped before it wrote anything


def test_a_closing_centre_stops_the_compile_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A centre closed (in a process that goes on: a test run, an embedding tool) while
    its lists compile stops the child, and does not compile them itself instead: what
    waited for them fails rather than going on without them."""
    import threading
    import time

    import rules.warninglists as wl
    from correlator.warninglists import Warninglists

    monkeypatch.setattr(wl, "_COMPILED", {})  # not the module's copy from another test

    cache = tmp_path / "cache"
    lists = Warninglists(True, cache)
    got: list[object] = []

    def ask() -> None:  # as an intake does: it fails, not goes on unscreened
        try:
            got.append(lists.get())
        except wl.CompileStopped as exc:
            got.append(exc)

    asking = threading.Thread(target=ask)
    asking.start()
    deadline = time.monotonic() + 30
    while not _compiling(cache):
        assert asking.is_alive() and time.monotonic() < deadline, "no child seen"
        time.sleep(0.01)
    lists.close()
    asking.join(timeout=10)
    assert not asking.is_alive() and len(got) == 1  # nothing compiled here instead
    assert isinstance(got[0], wl.CompileStopped)
    assert _compiling(cache) == []
    assert not list(cache.glob("*.bin"))
