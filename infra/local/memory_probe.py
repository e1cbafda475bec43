"""What the running emulator keeps, on request: BOOMERANG_TRACEMALLOC=1 `boomerang local`.

Finding what grows in a long `make local` run needs the real process (its front door, pollers,
Step Functions threads), not a harness: with the variable set, tracemalloc traces from the start
(BOOMERANG_TRACEMALLOC=N keeps N frames per allocation, default 1), and each SIGUSR1 (and the
stop) writes to stderr the traced total, the process's resident memory and the source lines whose
kept memory grew most since the previous report (the first report: since tracing began). Tracing
costs time and memory itself, so it is off unless asked for.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import tracemalloc
from typing import Any, TextIO

ENV = "BOOMERANG_TRACEMALLOC"
TOP = 25  # lines per report


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory (VmRSS) of a process, in MB (0 where /proc is missing)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class MemoryProbe:
    """tracemalloc on from `start`; `report` writes the growth since the previous report."""

    def __init__(self, frames: int = 1, out: TextIO | None = None) -> None:
        self.frames = frames
        self.out = out or sys.stderr
        self._last: tracemalloc.Snapshot | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, environ: Any = os.environ) -> MemoryProbe | None:
        """The probe BOOMERANG_TRACEMALLOC asks for, or None. Raises ValueError on a bad value."""
        raw = (environ.get(ENV) or "").strip()
        if raw in ("", "0"):
            return None
        if not raw.isdigit() or not 1 <= int(raw) <= 100:
            raise ValueError(f"{ENV}={raw[:40]!r}: 1 (trace), or 2 to 100 frames per allocation, is allowed")
        return cls(frames=int(raw))

    def start(self) -> MemoryProbe:
        tracemalloc.start(self.frames)
        self._last = tracemalloc.take_snapshot()
        return self

    def install_signal(self) -> None:
        """SIGUSR1 writes a report (from the main thread, as Python runs signal handlers)."""
        signal.signal(signal.SIGUSR1, lambda *_: self.report())

    def report(self, label: str = "SIGUSR1") -> list[tuple[str, int, int]]:
        """Write and return the TOP lines whose kept memory grew most: (where, bytes grown, count grown)."""
        with self._lock:
            if not tracemalloc.is_tracing():
                return []
            snapshot = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(False, tracemalloc.__file__)]
            )
            base = self._last
            self._last = snapshot
            if base is None:
                return []
            key = "traceback" if self.frames > 1 else "lineno"
            stats = snapshot.compare_to(base, key)
            stats.sort(key=lambda s: s.size_diff, reverse=True)
            top = [(_where(s.traceback), s.size_diff, s.count_diff) for s in stats[:TOP]]
            current, peak = tracemalloc.get_traced_memory()
            lines = [
                f"[memory] {label}: traced {current / 1e6:.1f} MB (peak {peak / 1e6:.1f}), "
                f"VmRSS {rss_mb():.1f} MB; grown most since the previous report:"
            ]
            lines += [
                f"[memory] {size / 1024:+10.1f} KiB {count:+8d} blocks  {where}" for where, size, count in top
            ]
            print("\n".join(lines), file=self.out, flush=True)
            return top

    def stop(self) -> None:
        self.report("stop")
        tracemalloc.stop()


def _where(tb: tracemalloc.Traceback) -> str:
    return " <- ".join(f"{f.filename.rsplit('site-packages/', 1)[-1]}:{f.lineno}" for f in tb)
