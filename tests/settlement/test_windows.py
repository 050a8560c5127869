"""Cut-off schedules: the next cut-off, and which windows are due (pure)."""

from __future__ import annotations

import pytest

from flashpay.clock import NS_PER_SECOND
from flashpay.settlement.windows import (
    BEIJING_OFFSET_NS,
    DAY_NS,
    Schedule,
    due_cutoffs,
    next_cutoff,
)

MIDNIGHT_BEIJING = 1_767_225_600 * NS_PER_SECOND - BEIJING_OFFSET_NS  # 2026-01-01 00:00 +08
HOUR = 3600 * NS_PER_SECOND
SCHEDULE = Schedule(cutoffs=("12:00", "06:00", "23:00"), close_delay_seconds=5)


def test_next_cutoff_is_strictly_after_and_wraps_to_the_next_day() -> None:
    assert next_cutoff(SCHEDULE, MIDNIGHT_BEIJING) == MIDNIGHT_BEIJING + 6 * HOUR
    assert next_cutoff(SCHEDULE, MIDNIGHT_BEIJING + 6 * HOUR) == MIDNIGHT_BEIJING + 12 * HOUR
    assert next_cutoff(SCHEDULE, MIDNIGHT_BEIJING + 6 * HOUR - 1) == MIDNIGHT_BEIJING + 6 * HOUR
    after_last = MIDNIGHT_BEIJING + 23 * HOUR
    assert next_cutoff(SCHEDULE, after_last) == MIDNIGHT_BEIJING + DAY_NS + 6 * HOUR


def test_due_waits_for_the_delay_and_the_first_window_takes_the_past() -> None:
    six = MIDNIGHT_BEIJING + 6 * HOUR
    assert due_cutoffs(SCHEDULE, start_ns=0, now_ns=six + 4 * NS_PER_SECOND) == [
        MIDNIGHT_BEIJING - DAY_NS + 23 * HOUR
    ]
    assert due_cutoffs(SCHEDULE, start_ns=0, now_ns=six + 5 * NS_PER_SECOND) == [six]
    later = MIDNIGHT_BEIJING + 23 * HOUR + 5 * NS_PER_SECOND
    assert due_cutoffs(SCHEDULE, start_ns=six, now_ns=later) == [
        MIDNIGHT_BEIJING + 12 * HOUR,
        MIDNIGHT_BEIJING + 23 * HOUR,
    ]


@pytest.mark.parametrize("cutoffs", [(), ("24:00",), ("6:00",)])
def test_a_bad_schedule_is_refused(cutoffs: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="cut-off"):
        Schedule(cutoffs=cutoffs)
