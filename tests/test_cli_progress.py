"""Long CLI work shows its progress on a terminal (rich, on stderr) and nothing when
stderr is a pipe: `vigia indicators import` and `vigia indicators sync`."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from tests.centre import free_port
from tests.mispserver import KEY, MispOnLoopback
from tests.test_mispsync import _numbered_events


def _run(args: list[str], env: dict[str, str], terminal: bool) -> tuple[int, str]:
    """The command's exit code and stderr, with stderr a terminal (a pty) or a pipe."""
    command = [sys.executable, "-m", "vigia", *args]
    if not terminal:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        return done.returncode, done.stderr
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=secondary, env=env)
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:  # the other end closed: the command is done
            break
        if not data:
            break
        chunks.append(data)
    os.close(primary)
    return proc.wait(timeout=120), b"".join(chunks).decode(errors="replace")


def test_import_and_sync_draw_their_progress_on_a_terminal_only(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "VIGIA_DATA_DIR": str(tmp_path / "d"),
        "VIGIA_WARNINGLISTS": "false",
        "COLUMNS": "100",
    }
    feed = tmp_path / "feed.csv"
    feed.write_text("type,value\n" + "".join(f"ip-dst,192.0.2.{n}\n" for n in range(1, 200)))
    code, shown = _run(["indicators", "import", str(feed)], env, terminal=True)
    assert code == 0 and "importando feed.csv" in shown and "199" in shown
    code, plain = _run(["indicators", "import", str(feed)], env, terminal=False)
    assert code == 0 and "importando" not in plain and "feed.csv (csv): 199" in plain

    key_file = tmp_path / "misp.key"
    key_file.write_text(KEY)
    with MispOnLoopback(_numbered_events(3), free_port()) as misp:
        sync = ["indicators", "sync", "--misp-url", misp.url, "--misp-key-file", str(key_file)]
        code, shown = _run([*sync, "--full"], env, terminal=True)
        assert code == 0 and "leyendo MISP" in shown and "guardando" in shown
        code, plain = _run([*sync, "--full"], env, terminal=False)
    assert code == 0 and "leyendo" not in plain and "3 indicators" in plain
