"""A million indicators in the running centre, measured on the real processes (issue 17).

Writes a CSV of N mixed indicators (`type,value`: IPv4 addresses, networks,
domains, hostnames, URLs, md5, sha1, sha256, e-mail; lengths as feeds give
them), then, on SQLite and on PostgreSQL (when it answers), runs as processes:

- `vigia indicators import CSV` on a fresh database, then again (nothing
  changed): wall time and peak RSS (the child's rusage);
- `vigia serve` on an empty database (its baseline) and on the imported one:
  RSS when /health first answers and once /ready says the index is in place,
  time to ready, the first ingest batch's answer and latency during the load;
  then a restart of it, ready from the index snapshot the first run kept;
- `vigia scan PCAP -i CSV` against the same scan with one indicator: wall
  time and peak RSS over it, against the file's size; then the same scan
  again (the compiled index kept by the first, correlator.scanindex).

Beside each wall time, the CPU seconds of the process (user + system: of the
command, from its rusage; of `vigia serve`, from /proc when /health and
/ready first answer).

Each figure is printed beside its target, with the machine's load average
(other processes share the 2 cores).

    python bench/indicators_centre.py [--indicators 1000000] [--no-postgres]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.startup_index import batch, observation, stop  # noqa: E402

PG_ADMIN = os.environ.get("VIGIA_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PCAP = ROOT.parent / "shared/corpora/zeek-traces/dns-http/opt.basic/pcap/wikipedia.pcap"
HIT = "bench-hit.example"  # the first indicator: a batch naming it once ready gives an alert


def generate(path: Path, n: int, seed: int = 17) -> None:
    """n indicators, one in ten of each kind, random where feeds are random."""
    rnd = random.Random(seed)
    tlds = ["com", "net", "org", "ru", "cn", "info", "xyz", "top", "es", "io"]
    words = ["login", "secure", "update", "mail", "cdn", "api", "verify", "account", "pay",
             "cloud", "static", "files"]  # fmt: skip

    def v4() -> str:
        return f"{rnd.randrange(1, 224)}.{rnd.randrange(256)}.{rnd.randrange(256)}"

    with path.open("w") as fh:
        fh.write(f"type,value\ndomain,{HIT}\n")
        for i in range(1, n):
            k, w, tld = i % 10, words[i % len(words)], tlds[(i // 10) % len(tlds)]
            if k == 0:
                row = f"ip-dst,{v4()}.{rnd.randrange(1, 255)}"
            elif k == 1:
                row = f"ip-src,{v4()}.{rnd.randrange(1, 255)}"
            elif k == 2:
                row = f"ip-dst,{v4()}.0/{rnd.choice((24, 24, 24, 28, 22))}"
            elif k == 3:
                row = f"domain,{w}-{i:x}{rnd.getrandbits(20):x}.{tld}"
            elif k == 4:
                row = f"hostname,{w}.{rnd.getrandbits(32):08x}-{i % 9973}.{tld}"
            elif k == 5:
                row = (
                    f"url,http://{w}{i:x}.example-{i % 4001}.{tld}/"
                    f"{rnd.getrandbits(40):x}/{w}.php?id={rnd.getrandbits(24)}"
                )
            elif k == 6:
                row = f"md5,{rnd.getrandbits(128):032x}"
            elif k == 7:
                row = f"sha1,{rnd.getrandbits(160):040x}"
            elif k == 8:
                row = f"sha256,{rnd.getrandbits(256):064x}"
            else:
                row = f"email-src,{w}.{i:x}@{rnd.choice(words)}{i % 2003}.{tld}"
            fh.write(row + "\n")


@dataclass
class Run:
    wall_s: float
    peak_mb: float
    code: int
    err: str
    cpu_s: float = 0.0


TIME = Path("/usr/bin/time")


def run(args: list[str], env: dict[str, str]) -> Run:
    """A `vigia` command as a process: wall time, peak RSS, exit code.

    The peak is GNU time's (%M) when it is installed: Linux carries a process's
    high-water mark across exec, so the rusage of a child forked from this
    (large) process would count this one's memory too."""
    start = time.monotonic()
    peak_file = Path(tempfile.mkstemp(prefix="vigia-peak-")[1])
    wrap = [str(TIME), "-f", "%M", "-o", str(peak_file)] if TIME.exists() else []
    proc = subprocess.Popen(
        [*wrap, sys.executable, "-m", "vigia", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    err = proc.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    peak_kb = usage.ru_maxrss
    if wrap:
        peak_kb = int(peak_file.read_text().split()[-1])
    peak_file.unlink()
    cpu = usage.ru_utime + usage.ru_stime  # GNU time's own is a few milliseconds
    return Run(time.monotonic() - start, peak_kb / 1024, proc.returncode, err, cpu)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Serve:
    rss_health_mb: float = 0.0
    health_s: float = 0.0
    cpu_health_s: float = 0.0
    cpu_ready_s: float = 0.0
    rss_ready_mb: float = 0.0
    ready_s: float = 0.0
    first_status: int = 0
    first_latency_s: float = 0.0
    slowest_ingest_s: float = 0.0
    alerts_once_ready: int = 0


def serve(env: dict[str, str], token: str, keep: bool = False, timeout_s: float = 300.0) -> Serve:
    """`vigia serve`: RSS at /health and once ready; ingests timed while it loads;
    with `keep`, stopped only once it has written its index snapshot."""
    from tests.centre import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
    }
    out, run_id, t0 = Serve(), uuid.uuid4().hex[:8], time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vigia", "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(timeout=30) as client:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError("vigia serve exited")
                try:
                    if client.get(url + "/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.05)
            out.rss_health_mb = rss_mb(proc.pid)
            out.health_s, out.cpu_health_s = time.monotonic() - t0, cpu_s(proc.pid)
            seq = 0
            while True:
                seq += 1
                start = time.monotonic()
                body = batch(f"b-{run_id}-{seq}", [observation("quiet.example", seq)])
                r = client.post(url + "/api/v1/observations", content=body, headers=headers)
                took = time.monotonic() - start
                if seq == 1:
                    out.first_status, out.first_latency_s = r.status_code, took
                if client.get(url + "/ready").status_code == 200:
                    out.ready_s, out.cpu_ready_s = time.monotonic() - t0, cpu_s(proc.pid)
                    break
                out.slowest_ingest_s = max(out.slowest_ingest_s, took)
                if time.monotonic() - t0 > timeout_s:
                    raise RuntimeError("not ready in time")
                time.sleep(0.2)
            time.sleep(2)  # the loader's garbage goes, the collector runs again
            out.rss_ready_mb = rss_mb(proc.pid)
            # The index snapshot is written once ready: let it be, for the next start.
            kept = Path(env["VIGIA_DATA_DIR"]) / "cache" / "indicator-index.snapshot"
            while (
                keep
                and time.monotonic() - t0 < timeout_s
                and not (
                    kept.exists() and kept.stat().st_mtime > time.time() - (time.monotonic() - t0)
                )
            ):
                time.sleep(0.2)
            r = client.post(
                url + "/api/v1/observations",
                content=batch(f"b-{run_id}-hit", [observation(HIT, 0)]),
                headers=headers,
            )
            out.alerts_once_ready = int(r.json().get("alerts", 0))
    finally:
        stop(proc)
    return out


def database(kind: str, where: Path) -> tuple[str, str | None]:
    """(URL, the PostgreSQL database's name to drop after, or None)."""
    if kind == "sqlite":
        return f"sqlite:///{where / 'vigia.db'}", None
    import sqlalchemy as sa

    name = f"vigia_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", name


def drop(name: str | None) -> None:
    if name is None:
        return
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def sensor_token(env: dict[str, str]) -> str:
    from core.settings import load_settings
    from core.tokens import Role
    from vigia.wiring import build

    s = build(
        load_settings(data_dir=Path(env["VIGIA_DATA_DIR"]), database_url=env["VIGIA_DATABASE_URL"])
    )
    try:
        with s.db.transaction() as session:
            return s.tokens.create(session, Role.SENSOR, "edge-1", None, "bench")[0]
    finally:
        s.close()


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def line(what: str, value: str, target: str) -> None:
    print(f"  {what:<44} {value:>18}   target {target:<14} ({load()})", flush=True)


def bench_backend(kind: str, csv: Path, tmp: Path, size_mb: float) -> None:
    where = tmp / kind
    (where / "data").mkdir(parents=True)
    (where / "empty").mkdir(parents=True)
    url, name = database(kind, where)
    empty_url, empty_name = database(kind, where / "empty")
    try:
        env = {**os.environ, "VIGIA_DATA_DIR": str(where / "data"), "VIGIA_DATABASE_URL": url}
        print(f"{kind}:", flush=True)
        first = run(["indicators", "import", str(csv)], env)
        if first.code:
            raise RuntimeError(first.err)
        line("import: wall", f"{first.wall_s:.1f} s", "≤ 30 s")
        line("import: CPU (user + system)", f"{first.cpu_s:.1f} s", "")
        line("import: peak RSS", f"{first.peak_mb:.0f} MB", "≤ 500 MB")
        again = run(["indicators", "import", str(csv)], env)
        line("re-import, unchanged: wall", f"{again.wall_s:.1f} s", "≤ 15 s")
        line("re-import, unchanged: peak RSS", f"{again.peak_mb:.0f} MB", "≤ 500 MB")
        print("   ", first.err.strip().splitlines()[-1], "|", again.err.strip().splitlines()[-1])
        base_env = {**env, "VIGIA_DATA_DIR": str(where / "empty"), "VIGIA_DATABASE_URL": empty_url}
        base = serve(base_env, sensor_token(base_env))
        full = serve(env, sensor_token(env), keep=True)
        line("serve, empty store: RSS once ready", f"{base.rss_ready_mb:.0f} MB", "baseline")
        line("serve, 1 M: RSS at /health", f"{full.rss_health_mb:.0f} MB", "")
        over = full.rss_ready_mb - base.rss_ready_mb
        line("serve, 1 M: RSS once ready", f"{full.rss_ready_mb:.0f} MB", "")
        line("serve, 1 M: RSS over the baseline", f"{over:.0f} MB", "≤ 250 MB")
        line("serve, 1 M: time to ready", f"{full.ready_s:.1f} s", "≤ 20 s")
        line(
            "serve, 1 M: CPU to /health, to ready",
            f"{full.cpu_health_s:.1f}, {full.cpu_ready_s:.1f} s",
            "",
        )
        line(
            "serve, 1 M: first batch during the load",
            f"{full.first_status} in {full.first_latency_s:.2f} s",
            "< 1 s",
        )
        line("serve, 1 M: slowest batch during the load", f"{full.slowest_ingest_s:.2f} s", "< 1 s")
        line("serve, 1 M: a hit once ready", f"{full.alerts_once_ready} alert", "1")
        kept = serve(env, sensor_token(env))  # a restart: the index kept by the run above
        line("restart from the snapshot: time to ready", f"{kept.ready_s:.1f} s", "≤ 5 s")
        line("restart from the snapshot: /health at", f"{kept.health_s:.1f} s", "")
        line(
            "restart from the snapshot: CPU to /health, ready",
            f"{kept.cpu_health_s:.1f}, {kept.cpu_ready_s:.1f} s",
            "",
        )
        over = kept.rss_ready_mb - base.rss_ready_mb
        line("restart from the snapshot: RSS over baseline", f"{over:.0f} MB", "≤ 250 MB")
        line("restart from the snapshot: a hit", f"{kept.alerts_once_ready} alert", "1")
    finally:
        drop(name)
        drop(empty_name)
    print(f"  (CSV {size_mb:.1f} MB)", flush=True)


def bench_scan(csv: Path, tmp: Path, size_mb: float) -> None:
    if not PCAP.exists():
        print(f"scan: {PCAP} not found; skipped")
        return
    one = tmp / "one.csv"
    one.write_text(f"type,value\ndomain,{HIT}\n")
    env = {
        **os.environ,
        "VIGIA_DATA_DIR": str(tmp / "scan"),
        "VIGIA_CACHE_DIR": str(tmp / "scan-cache"),  # the kept scan index: this run's only
    }
    small = run(["scan", str(PCAP), "-i", str(one), "-o", str(tmp / "a.json")], env)
    big = run(["scan", str(PCAP), "-i", str(csv), "-o", str(tmp / "b.json")], env)
    again = run(["scan", str(PCAP), "-i", str(csv), "-o", str(tmp / "c.json")], env)
    if small.code or big.code or again.code:
        raise RuntimeError(small.err + big.err + again.err)
    print("scan:")
    for what, r in (("1 M", big), ("1 M again", again)):
        line(f"scan: {what} over 1 indicator, wall", f"+{r.wall_s - small.wall_s:.1f} s", "≤ 10 s")
        line(f"scan: {what} over 1 indicator, CPU", f"+{r.cpu_s - small.cpu_s:.1f} s", "")
        over = r.peak_mb - small.peak_mb
        line(
            f"scan: {what}: peak RSS over 1 indicator",
            f"+{over:.0f} MB ({over / size_mb:.1f}x)",
            f"≤ 3x ({3 * size_mb:.0f} MB)",
        )
    line("scan: peak RSS, 1 indicator / 1 M / again",
         f"{small.peak_mb:.0f} / {big.peak_mb:.0f} / {again.peak_mb:.0f} MB", "")  # fmt: skip
    print("   ", again.err.strip().splitlines()[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--indicators", type=int, default=1_000_000)
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--only", choices=["sqlite", "postgresql", "scan"], action="append")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="vigia-bench-") as name:
        tmp = Path(name)
        csv = tmp / "indicators.csv"
        generate(csv, args.indicators)
        size_mb = csv.stat().st_size / 2**20
        print(f"{args.indicators} indicators, {size_mb:.1f} MB of CSV; {os.cpu_count()} cores")
        wanted = args.only or ["sqlite", "postgresql", "scan"]
        if "sqlite" in wanted:
            bench_backend("sqlite", csv, tmp, size_mb)
        if "postgresql" in wanted and not args.no_postgres:
            bench_backend("postgresql", csv, tmp, size_mb)
        if "scan" in wanted:
            bench_scan(csv, tmp, size_mb)


if __name__ == "__main__":
    main()
