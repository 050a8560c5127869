"""Closing and settling windows over real payments (SQLite and PostgreSQL): positions sum to zero
and equal each member's own books, boundary postings land in the right window, the settlement
chain clears the network's mirrors, and closing and settling are idempotent."""

from __future__ import annotations

from pathlib import Path

import pytest

from flashpay.books import check_books
from flashpay.clock import NS_PER_SECOND, FakeClock
from flashpay.errors import RefusedError
from flashpay.institutions.chart import AccountCode, institution_account_id
from flashpay.ledger.check import check
from flashpay.platform import Platform
from flashpay.settlement import camt053
from flashpay.settlement.chart import settlement_chart
from flashpay.settlement.close import close_window
from flashpay.settlement.queries import window_files
from flashpay.settlement.settle import settle_window
from flashpay.settlement.windows import Schedule, next_cutoff

from .world import World

SCHEDULE = Schedule(cutoffs=("06:00", "12:00", "18:00", "23:00"), close_delay_seconds=5)


def _clock(platform: Platform) -> FakeClock:
    assert isinstance(platform.clock, FakeClock)
    return platform.clock


def _balances(platform: Platform, ids: list[int]) -> dict[int, int]:
    return {a.id: a.debits_posted - a.credits_posted for a in platform.ledger.lookup_accounts(ids)}


def _world(platform: Platform) -> World:
    w = World(platform)
    w.person("ann", "BOC")
    w.person("bo", "ICBC")
    w.shop("Wumart", "UMS")
    w.shop("Canteen", "LKL")
    return w


def test_windows_close_settle_and_clear_the_mirrors(
    service_platform: Platform, tmp_path: Path
) -> None:
    platform = service_platform
    clock = _clock(platform)
    w = _world(platform)
    chart = settlement_chart(platform=platform)
    cut1 = next_cutoff(SCHEDULE, clock.now_ns())
    # Window 1 (everything before the first cut-off): payments and a P2P transfer.
    first = w.pay("ann", "Wumart", 10_000)
    w.pay("bo", "Canteen", 2_345)
    w.send("ann", "bo", 5_000)
    clock.set_ns(cut1 - 1)
    w.pay("bo", "Wumart", 777)  # the last nanosecond before the cut-off: window 1
    # Window 2: a posting exactly at the cut-off, and a refund of a window-1 payment.
    clock.set_ns(cut1)
    at_cut = w.pay("ann", "Canteen", 1_000)
    w.refund("Wumart", first, 4_000)
    cut2 = next_cutoff(SCHEDULE, cut1)

    with pytest.raises(RefusedError) as refused:
        close_window(platform=platform, end_ns=cut1, schedule=SCHEDULE, directory=tmp_path)
    assert refused.value.code == "window_not_due"
    clock.set_ns(cut1 + 5 * NS_PER_SECOND)
    one = close_window(platform=platform, end_ns=cut1, schedule=SCHEDULE, directory=tmp_path)
    assert one.created
    assert one.window.state == "closed"
    by = {p.member: p for p in one.positions}
    assert sum(p.net_fen for p in one.positions) == 0
    assert all(p.net_fen == p.books_net_fen for p in one.positions)
    # The figures of window 1 by hand (MDR 0.60 %: interchange 0.45 %, network fee 0.065 %).
    assert by["BOC"].owes_fen == 10_000 - 45 + 5_000  # to the network: purchase + P2P
    assert by["ICBC"].owed_fen == 5_000
    assert by["UMS"].net_fen == (10_000 - 45 - 7) + (777 - 3 - 1)
    assert by["CUP"].net_fen == by["CUP"].network_fee_fen == 7 + 2 + 1
    assert one.window.transactions > 0
    # Idempotent: closing again returns the stored window.
    again = close_window(platform=platform, end_ns=cut1, schedule=SCHEDULE, directory=tmp_path)
    assert not again.created
    assert again.window == one.window
    assert sorted(again.positions, key=lambda p: p.member) == sorted(
        one.positions, key=lambda p: p.member
    )

    settled = settle_window(platform=platform, window_id=one.window.id)
    assert settled.state == "settled"
    assert settled.settlement_chain_id is not None
    assert settle_window(platform=platform, window_id=one.window.id) == settled
    # The deposits moved by the positions; the bank's accounts mirror them.
    for p in one.positions:
        m = chart.member(p.member)
        assert _balances(platform, [m.deposit])[m.deposit] == p.net_fen
        assert _balances(platform, [m.bank_account])[m.bank_account] == -p.net_fen
    assert _balances(platform, [chart.clearing]).get(chart.clearing, 0) == 0
    assert check_books(platform=platform) == []

    clock.set_ns(cut2 + 5 * NS_PER_SECOND)
    two = close_window(platform=platform, end_ns=cut2, schedule=SCHEDULE, directory=tmp_path)
    assert two.window.start_ns == cut1
    by2 = {p.member: p for p in two.positions}
    assert 990 < by2["LKL"].owed_fen < 1_000  # the payment exactly at the cut-off
    assert by2["UMS"].refunds_fen > 0  # the refund of a window-1 payment, in window 2
    assert by2["UMS"].net_fen < 0
    assert sum(p.net_fen for p in two.positions) == 0
    settle_window(platform=platform, window_id=two.window.id)
    # Every mirror is back to zero once every window with postings is settled.
    mirrors = [a for m in chart.members for a in m.own_side]
    assert set(_balances(platform, mirrors).values()) == {0}
    assert at_cut.id  # window 1's LKL saw the 2,345 only (interchange 10.55 → 11, fee 2)
    assert by["LKL"].owed_fen == 2_345 - 11 - 2
    report = check(platform.database_url)
    assert report.ok, [str(p) for p in report.problems]

    # The files: every member's, digests stored, camt.053 structurally valid and its closing
    # balance the position.
    with platform.engine.connect() as connection:
        files = window_files(connection, one.window.id)
    kinds = {(f.member, f.kind) for f in files}
    for m in chart.members:
        for kind in ("clearing_csv", "clearing_json", "camt053"):
            assert (m.code, kind) in kinds
    for f in files:
        if f.kind == "camt053":
            data = Path(f.path).read_bytes()
            assert camt053.check_statement(data) == []
            assert camt053.closing_balance_fen(data) == by[f.member].net_fen


def test_the_first_window_holds_everything_before_its_cut_off(
    service_platform: Platform, tmp_path: Path
) -> None:
    platform = service_platform
    clock = _clock(platform)
    w = _world(platform)
    w.pay("ann", "Wumart", 500)
    cut = next_cutoff(SCHEDULE, clock.now_ns())
    clock.set_ns(cut + 10 * NS_PER_SECOND)
    closed = close_window(platform=platform, end_ns=cut, schedule=SCHEDULE, directory=tmp_path)
    assert closed.window.start_ns == 0
    fee_income = institution_account_id("CUP", AccountCode.FEE_INCOME)
    assert (
        -_balances(platform, [fee_income])[fee_income]
        == {p.member: p for p in closed.positions}["CUP"].net_fen
    )
