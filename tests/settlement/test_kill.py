"""Kill -9 during a close and during a settle (a real process, SIGKILL), then run again: the same
result, one window, one settlement chain, books balanced (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from flashpay.books import check_books
from flashpay.clock import NS_PER_SECOND, FakeClock
from flashpay.institutions.chart import TransferCode
from flashpay.ledger.check import check
from flashpay.platform import Platform
from flashpay.settlement.close import close_window
from flashpay.settlement.models import settlement_windows
from flashpay.settlement.queries import window_files
from flashpay.settlement.settle import settle_window
from flashpay.settlement.windows import next_cutoff

from .killed import SCHEDULE
from .world import World

HERE = Path(__file__).parent


def _run_until(args: list[str], marker: str) -> str:
    """Start ``killed.py`` with ``args``, wait for its ``marker`` line, SIGKILL it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parents[1] / "src"), str(HERE)])}
    process = subprocess.Popen(
        [sys.executable, str(HERE / "killed.py"), *args],
        stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith(marker), line
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    return line


def test_kill_during_close_and_settle_then_rerun(
    service_platform: Platform, tmp_path: Path
) -> None:
    platform = service_platform
    clock = platform.clock
    assert isinstance(clock, FakeClock)
    w = World(platform)
    w.person("ann", "BOC")
    w.person("bo", "ICBC")
    w.shop("Wumart", "UMS")
    paid = w.pay("ann", "Wumart", 12_300)
    w.pay("bo", "Wumart", 4_560)
    w.send("bo", "ann", 1_000)
    w.refund("Wumart", paid, 300)
    cut = next_cutoff(SCHEDULE, clock.now_ns())
    clock.set_ns(cut + 6 * NS_PER_SECOND)
    now = str(clock.now_ns())
    url = platform.database_url

    line = _run_until(["close", url, now, str(cut), str(tmp_path)], "DIGEST")
    with platform.engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(settlement_windows)
                                  ).scalar() == 0  # fmt: skip
    closed = close_window(platform=platform, end_ns=cut, schedule=SCHEDULE, directory=tmp_path)
    assert closed.created
    assert closed.window.results_digest == line.split()[1]  # the same figures and files
    with platform.engine.connect() as connection:
        for f in window_files(connection, closed.window.id):
            assert Path(f.path).stat().st_size == f.size_bytes

    _run_until(["settle", url, now, str(closed.window.id)], "POSTED")
    with platform.engine.connect() as connection:
        state = connection.execute(sa.select(settlement_windows.c.state)).scalar()
    assert state == "closed"  # killed after the ledger posted, before the window was marked
    settled = settle_window(platform=platform, window_id=closed.window.id)
    assert settled.state == "settled"
    with platform.engine.connect() as connection:
        legs = connection.execute(
            sa.text("SELECT COUNT(*), COUNT(DISTINCT chain_id) FROM ledger_transfers "
                    "WHERE code = :code"), {"code": int(TransferCode.SETTLEMENT)},
        ).one()  # fmt: skip
    assert legs[1] == 1  # one settlement chain, not two
    assert legs[0] > 0
    assert check_books(platform=platform) == []
    report = check(url)
    assert report.ok, [str(p) for p in report.problems]
