"""Settlement's entry points for the API, the CLI and the demo: the schedule from the
environment, the files' directory, closing every due window, and who may read what.

Settings: ``FLASHPAY_SETTLEMENT_CUTOFFS`` (comma-separated ``HH:MM``, Beijing time; default
``06:00,12:00,18:00,23:00``) and ``FLASHPAY_SETTLEMENT_CLOSE_DELAY_SECONDS`` (default 5). Files go
under ``<data dir>/settlement/<window id>/``.
"""

from __future__ import annotations

import os
from pathlib import Path

from flashpay import config
from flashpay.platform import Platform
from flashpay.settlement.close import CloseResult, close_window
from flashpay.settlement.queries import last_window
from flashpay.settlement.windows import Schedule, due_cutoffs

CUTOFFS_ENV = "FLASHPAY_SETTLEMENT_CUTOFFS"
DELAY_ENV = "FLASHPAY_SETTLEMENT_CLOSE_DELAY_SECONDS"


def schedule_from_environment() -> Schedule:
    cutoffs = os.environ.get(CUTOFFS_ENV)
    delay = os.environ.get(DELAY_ENV)
    default = Schedule()
    return Schedule(
        cutoffs=tuple(c.strip() for c in cutoffs.split(",")) if cutoffs else default.cutoffs,
        close_delay_seconds=int(delay) if delay else default.close_delay_seconds,
    )


def files_directory(data_directory: Path | None = None) -> Path:
    return config.data_dir(data_directory) / "settlement"


def close_due(*, platform: Platform, schedule: Schedule, directory: Path) -> list[CloseResult]:
    """Close every window whose cut-off plus delay has passed, oldest first."""
    with platform.engine.connect() as connection:
        last = last_window(connection)
    start = 0 if last is None else last.end_ns
    return [
        close_window(platform=platform, end_ns=cutoff, schedule=schedule, directory=directory)
        for cutoff in due_cutoffs(schedule, start_ns=start, now_ns=platform.clock.now_ns())
    ]
