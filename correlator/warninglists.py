"""The MISP warninglists as this installation uses them: compiled (or read from the
cache) once, on first use, by whichever thread asks first (the start-up warm-up, an
upload or an import); nothing at all when they are turned off."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from rules.warninglists import Compiles, CompileStopped, Warnings


class Warninglists:
    def __init__(self, enabled: bool, cache_dir: Path) -> None:
        self._enabled = enabled
        self._cache_dir = cache_dir
        self._lock = threading.Lock()
        self._warnings: Warnings | None = None
        self._compiles = Compiles()

    def ready(self) -> bool:
        """Whether `get` answers at once (off, or already built)."""
        return not self._enabled or self._warnings is not None

    def start(self) -> None:
        """`get` begun in a thread, unless it is ready: the lists compile (in their child
        process) while the caller does something else, then calls `get`."""
        if not self.ready():
            threading.Thread(target=self._warm, name="warninglists", daemon=True).start()

    def _warm(self) -> None:
        with contextlib.suppress(CompileStopped):  # closed while they compiled: no one waits
            self.get()

    def get(self) -> Warnings | None:
        """The lists (about half a second to build the first time), or None if off."""
        if not self._enabled:
            return None
        with self._lock:  # built once, not once per thread that got here first
            if self._warnings is None:
                # CompileStopped if the centre closes meanwhile: an intake waiting for the
                # lists fails (rolled back) rather than taking its source in unscreened.
                self._warnings = Warnings.bundled(self._cache_dir, self._compiles)
        return self._warnings

    def close(self) -> None:
        """A compile this centre started (its child process) stopped: a closed centre
        leaves nothing running."""
        self._compiles.stop()
