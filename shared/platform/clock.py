"""Boomerang's clock: one place to ask "what time is it".

On AWS it is the wall clock. The local emulator swaps in a compressed clock (``--speed``) so journey
waits of hours take seconds, and every handler sees the same compressed "now".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

_lock = threading.Lock()
_now: Callable[[], float] = time.time


def now_ts() -> float:
    """Seconds since the epoch on Boomerang's clock."""
    return _now()


def now() -> datetime:
    return datetime.fromtimestamp(_now(), tz=UTC)


def real_seconds(boomerang_seconds: float) -> float:
    """How long `boomerang_seconds` of Boomerang time last on the wall clock (shorter when the
    emulator compresses time): for real waits such as an SQS message delay."""
    return boomerang_seconds / float(getattr(_now, "speed", 1.0))


def speed() -> float:
    """How many times faster than the wall clock Boomerang's clock runs (1 on AWS)."""
    return float(getattr(_now, "speed", 1.0))


def settle_window(boomerang_seconds: float, real_floor_seconds: float) -> float:
    """How long, in Boomerang seconds, to wait for another part of Boomerang to catch up (a queue
    backlog, the profile λ folding the same event, a retried write).

    `boomerang_seconds` on Boomerang's clock, but never less than `real_floor_seconds` on the wall
    clock: work does not go faster when the emulator compresses time, so a 6 h window at x3600
    would give up after 6 real seconds. On AWS (speed 1) the floor is far below the window and
    this is `boomerang_seconds`."""
    return max(boomerang_seconds, real_floor_seconds * speed())


def poll_interval(boomerang_seconds: float, real_floor_seconds: float = 0.25) -> float:
    """A polling interval that never spins faster than `real_floor_seconds` on the wall clock."""
    return max(boomerang_seconds, real_floor_seconds * speed())


def sleep(boomerang_seconds: float) -> None:
    """Wait `boomerang_seconds` on Boomerang's clock: shorter in real time under a compressed
    clock; a test's clock that can be moved (`sleep` on it) moves instead."""
    own = getattr(_now, "sleep", None)
    if callable(own):
        own(boomerang_seconds)
    else:
        time.sleep(real_seconds(boomerang_seconds))


def set_clock(fn: Callable[[], float]) -> None:
    global _now
    with _lock:
        _now = fn


def reset_clock() -> None:
    set_clock(time.time)


class CompressedClock:
    """A clock that starts at real time and runs ``speed`` times faster."""

    def __init__(self, speed: float, start: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.speed = speed
        self._real0 = time.monotonic()
        self._t0 = time.time() if start is None else start

    def __call__(self) -> float:
        return self._t0 + (time.monotonic() - self._real0) * self.speed

    def real_seconds(self, boomerang_seconds: float) -> float:
        return boomerang_seconds / self.speed

    def restart(self, start: float) -> None:
        """Read `start` now and run on from there (setup time should not count)."""
        self._real0, self._t0 = time.monotonic(), start


def iso(ts: float) -> str:
    """ISO-8601 UTC with milliseconds and a Z, sortable as text."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def parse_iso(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
