"""The network's recent payment activity, for the operator console (``flashpay.web``).

Counts the payments created since a moment, per second and by decline reason, in one query over
the payments table (owned here; the console reads it through this function). The window is
bounded (``ACTIVITY_SECONDS_MAX``) because the query scans the recent rows: fine for a console
that asks for the last minute; a busy network wants the metrics counters of decision 0025.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import sqlalchemy as sa

from flashpay.clock import NS_PER_SECOND
from flashpay.db import autocommit
from flashpay.payments.models import payments
from flashpay.platform import Platform

ACTIVITY_SECONDS_MAX = 300


@dataclass(frozen=True, slots=True)
class Activity:
    """``per_second[i]`` is the number of payments created in second ``i`` of the window (the
    last one is the current second); ``declines`` counts the declined ones by reason."""

    window_seconds: int
    per_second: tuple[int, ...]
    declines: tuple[tuple[str, int], ...]
    total: int


def recent_activity(*, platform: Platform, window_seconds: int = 60) -> Activity:
    """The payments of the last ``window_seconds`` (1..``ACTIVITY_SECONDS_MAX``)."""
    if not 1 <= window_seconds <= ACTIVITY_SECONDS_MAX:
        raise ValueError(f"window_seconds must be 1..{ACTIVITY_SECONDS_MAX}")
    now_ns = platform.clock.now_ns()
    start_second = now_ns // NS_PER_SECOND - window_seconds + 1
    query = sa.select(payments.c.created_at_ns, payments.c.status, payments.c.decline_reason).where(
        payments.c.created_at_ns >= start_second * NS_PER_SECOND
    )
    counts = [0] * window_seconds
    declines: Counter[str] = Counter()
    with autocommit(platform.engine) as connection:
        for row in connection.execute(query):
            index = int(row.created_at_ns) // NS_PER_SECOND - start_second
            if 0 <= index < window_seconds:
                counts[index] += 1
            if row.decline_reason is not None:
                declines[str(row.decline_reason)] += 1
    return Activity(
        window_seconds=window_seconds,
        per_second=tuple(counts),
        declines=tuple(sorted(declines.items(), key=lambda item: (-item[1], item[0]))),
        total=sum(counts),
    )
