"""Time as a seam: every domain reads the time from a ``Clock`` passed in, never from ``time``.

Time is an ``int`` of nanoseconds since the Unix epoch, UTC (``now_ns``), as TigerBeetle keeps it;
``datetime`` appears only at the edges (API, display). Tests and the simulator pass a
``FakeClock`` and move it forward; production passes ``SystemClock``.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol

NS_PER_SECOND = 1_000_000_000


class Clock(Protocol):
    def now_ns(self) -> int:
        """Nanoseconds since the Unix epoch, UTC."""
        ...


class SystemClock:
    """The machine's wall clock."""

    def now_ns(self) -> int:
        return time.time_ns()


class FakeClock:
    """A clock that moves only when told to; thread-safe."""

    def __init__(self, start_ns: int = 1_767_225_600 * NS_PER_SECOND) -> None:  # 2026-01-01
        self._now_ns = start_ns
        self._lock = threading.Lock()

    def now_ns(self) -> int:
        with self._lock:
            return self._now_ns

    def advance(self, seconds: float = 0, *, ns: int = 0) -> None:
        with self._lock:
            self._now_ns += int(seconds * NS_PER_SECOND) + ns

    def set_ns(self, now_ns: int) -> None:
        with self._lock:
            self._now_ns = now_ns


def to_datetime(timestamp_ns: int) -> datetime:
    """A UTC ``datetime`` for a nanosecond timestamp (microsecond precision)."""
    return datetime.fromtimestamp(timestamp_ns // 1_000 / 1_000_000, tz=UTC)
