"""YARA over files: Vigía's pack compiler and matcher against the `yara` command line.

Same rules (rules/packs plus a few hundred generated string rules), same
files (random content with planted matches), one core each; prints both
throughputs and the ratio. DESIGN.md's target: ≥ 0.9x the command line.

    python bench/yara_vs_cli.py [--files 400] [--kib 256]
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from correlator.index import IndicatorIndex
from correlator.matcher import Matcher
from rules.yarapack import compile_pack
from sensors.engine import Content
from sensors.observation import Observation

PACKS = Path(__file__).resolve().parent.parent / "rules" / "packs"


def write(folder: Path, files: int, kib: int, rules: int) -> tuple[Path, Path]:
    rnd = random.Random(5)
    data = folder / "data"
    data.mkdir()
    markers = [f"vigia-marker-{i:04d}-{rnd.getrandbits(32):08x}" for i in range(rules)]
    for n in range(files):
        body = bytearray(rnd.randbytes(kib * 1024))
        if n % 4 == 0:  # a quarter of the files carry a marker somewhere
            m = markers[n % rules].encode()
            at = rnd.randrange(len(body) - len(m))
            body[at : at + len(m)] = m
        (data / f"f{n:05d}.bin").write_bytes(bytes(body))
    rule_dir = folder / "rules"
    rule_dir.mkdir()
    shutil.copy(PACKS / "vigia-basics.yar", rule_dir)
    (rule_dir / "markers.yar").write_text(
        "".join(
            f'rule marker_{i:04d} {{ strings: $m = "{m}" condition: $m }}\n'
            for i, m in enumerate(markers)
        )
    )
    return data, rule_dir


def run_cli(data: Path, rule_dir: Path) -> tuple[float, int]:
    rule_files = sorted(str(p) for p in rule_dir.glob("*.yar"))
    started = time.perf_counter()
    out = subprocess.run(
        ["yara", "-p", "1", "-w", *rule_files, str(data)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return time.perf_counter() - started, len(out.splitlines())


def run_vigia(data: Path, rule_dir: Path) -> tuple[float, int]:
    started = time.perf_counter()
    matcher = Matcher(IndicatorIndex(), compile_pack([rule_dir]))
    obs = Observation(0.0, "bench", "10.0.0.1", "10.0.0.2", 1, 80, "tcp", "1:x", "http")
    obs.add("file.hash.sha256", "0" * 64)
    hits = 0
    for path in sorted(data.iterdir()):
        hits += len(matcher.scan(Content(obs, path.read_bytes(), "file")))
    return time.perf_counter() - started, hits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=400)
    ap.add_argument("--kib", type=int, default=256)
    ap.add_argument("--rules", type=int, default=500)
    args = ap.parse_args()
    if shutil.which("yara") is None:
        sys.exit("bench: the yara command line is not installed (apt-get install yara)")
    with tempfile.TemporaryDirectory() as tmp:
        data, rule_dir = write(Path(tmp), args.files, args.kib, args.rules)
        total = args.files * args.kib * 1024
        t_cli, n_cli = run_cli(data, rule_dir)
        t_ours, n_ours = run_vigia(data, rule_dir)
    print(f"input: {args.files} files x {args.kib} KiB, {args.rules + 4} rules")
    print(f"yara CLI (1 thread): {t_cli:6.2f} s  {total / t_cli / 1e6:8.1f} MB/s  {n_cli} matches")
    print(
        f"vigia matcher:       {t_ours:6.2f} s  {total / t_ours / 1e6:8.1f} MB/s  {n_ours} matches"
    )
    print(f"ratio: vigia is {t_cli / t_ours:.2f}x the yara command line (target >= 0.9x)")


if __name__ == "__main__":
    main()
