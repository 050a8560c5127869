"""Settlement windows by cut-offs: which instants end a window, and which windows are due.

A schedule is a tuple of cut-off times of day in Beijing time (UTC+8, the network's business
day), e.g. ``("06:00", "12:00", "18:00", "23:00")``, and a close delay: a window ending at cut-off
``t`` may close from ``t + delay`` on, so that postings whose batch began before ``t`` have
committed (Mojaloop's settlement window close waits likewise). Windows are contiguous: each starts
where the last closed one ended (the first at 0), so every chain is in exactly one window.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flashpay.clock import NS_PER_SECOND

BEIJING_OFFSET_NS = 8 * 3600 * NS_PER_SECOND
DAY_NS = 86_400 * NS_PER_SECOND
CUTOFFS_MAX = 48
DUE_WINDOWS_MAX = 1000  # windows one ``due_cutoffs`` call returns at most
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


@dataclass(frozen=True, slots=True)
class Schedule:
    cutoffs: tuple[str, ...] = ("06:00", "12:00", "18:00", "23:00")
    close_delay_seconds: int = 5

    def __post_init__(self) -> None:
        if not 1 <= len(self.cutoffs) <= CUTOFFS_MAX:
            raise ValueError(f"1..{CUTOFFS_MAX} cut-offs")
        for c in self.cutoffs:
            if not _HHMM.match(c):
                raise ValueError(f"cut-off {c!r} is not HH:MM")
        if self.close_delay_seconds < 0:
            raise ValueError("the close delay is not negative")

    @property
    def offsets_ns(self) -> list[int]:
        """Each cut-off as nanoseconds after Beijing midnight, ascending."""
        return sorted(
            (int(c[:2]) * 3600 + int(c[3:]) * 60) * NS_PER_SECOND for c in set(self.cutoffs)
        )


def next_cutoff(schedule: Schedule, after_ns: int) -> int:
    """The first cut-off instant strictly after ``after_ns``."""
    local = after_ns + BEIJING_OFFSET_NS
    midnight = local - local % DAY_NS
    for day in (0, 1):
        for offset in schedule.offsets_ns:
            instant = midnight + day * DAY_NS + offset - BEIJING_OFFSET_NS
            if instant > after_ns:
                return instant
    raise AssertionError("unreachable: a day has a cut-off")  # pragma: no cover


def due_cutoffs(schedule: Schedule, *, start_ns: int, now_ns: int) -> list[int]:
    """The cut-offs after ``start_ns`` whose windows may close at ``now_ns`` (oldest first).

    The first window (``start_ns`` 0) holds everything before the latest due cut-off: history
    from before settlement existed is one window, not one per cut-off since 1970."""
    delay = schedule.close_delay_seconds * NS_PER_SECOND
    if start_ns == 0:
        latest = next_cutoff(schedule, now_ns - delay - DAY_NS - 1)
        found = 0
        while latest + delay <= now_ns:
            found = latest
            latest = next_cutoff(schedule, latest)
        return [found] if found else []
    out: list[int] = []
    cursor = start_ns
    while len(out) < DUE_WINDOWS_MAX:
        cutoff = next_cutoff(schedule, cursor)
        if cutoff + delay > now_ns:
            break
        out.append(cutoff)
        cursor = cutoff
    return out
