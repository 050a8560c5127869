"""Merchant payouts over real payments and refunds (SQLite and PostgreSQL): T+1 net of MDR, a
refund larger than the window's sales carried forward (never a negative payout), a rerun
returning the same payouts and writing no duplicate, an unsettled window refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from flashpay.clock import NS_PER_SECOND, FakeClock
from flashpay.errors import RefusedError
from flashpay.platform import Platform
from flashpay.settlement.close import close_window
from flashpay.settlement.models import settlement_payouts
from flashpay.settlement.payouts import payouts, value_date
from flashpay.settlement.settle import settle_window
from flashpay.settlement.windows import Schedule, next_cutoff

from .world import World

SCHEDULE = Schedule(cutoffs=("06:00", "12:00", "18:00", "23:00"), close_delay_seconds=5)


def _close(platform: Platform, tmp_path: Path, *, settle: bool = True) -> int:
    clock = platform.clock
    assert isinstance(clock, FakeClock)
    cut = next_cutoff(SCHEDULE, clock.now_ns())
    clock.set_ns(cut + 5 * NS_PER_SECOND)
    closed = close_window(platform=platform, end_ns=cut, schedule=SCHEDULE, directory=tmp_path)
    if settle:
        settle_window(platform=platform, window_id=closed.window.id)
    return closed.window.id


def test_payouts_carry_a_large_refund_forward(service_platform: Platform, tmp_path: Path) -> None:
    platform = service_platform
    w = World(platform)
    w.person("ann", "BOC")
    w.person("bo", "ICBC")
    shop = w.shop("Wumart", "UMS")
    other = w.shop("Canteen", "LKL")
    mdr = {n: n - shop.fees.split(n)[3] for n in (10_000, 8_000, 1_000, 20_000)}
    # Window 1: two sales at Wumart, one at Canteen.
    big = w.pay("ann", "Wumart", 10_000)
    w.pay("bo", "Wumart", 1_000)
    w.pay("bo", "Canteen", 2_345)
    one = _close(platform, tmp_path)
    first = {p.merchant_id: p for p in payouts(platform=platform, window_id=one)}
    assert set(first) == {shop.id, other.id}
    p1 = first[shop.id]
    assert (p1.acquirer, p1.payments, p1.payments_fen, p1.refunds) == ("UMS", 2, 11_000, 0)
    assert p1.fees_fen == mdr[10_000] + mdr[1_000]
    assert p1.net_fen == p1.payout_fen == 11_000 - p1.fees_fen
    assert (p1.carried_in_fen, p1.carried_out_fen) == (0, 0)
    assert first[other.id].acquirer == "LKL"
    assert first[other.id].payout_fen == 2_345 - (2_345 - other.fees.split(2_345)[3])

    # Window 2: a refund of ¥80 against ¥10 of sales: nothing is paid, the rest carried.
    w.refund("Wumart", big, 8_000)
    w.pay("ann", "Wumart", 1_000)
    two = _close(platform, tmp_path, settle=False)
    with pytest.raises(RefusedError) as refused:
        payouts(platform=platform, window_id=two)
    assert refused.value.code == "window_not_settled"
    settle_window(platform=platform, window_id=two)
    [p2] = payouts(platform=platform, window_id=two)
    assert (p2.payments, p2.payments_fen, p2.refunds, p2.refunds_fen) == (1, 1_000, 1, 8_000)
    assert p2.fees_fen == mdr[1_000] - mdr[8_000]
    assert p2.net_fen == (1_000 - mdr[1_000]) - (8_000 - mdr[8_000]) < 0
    assert p2.payout_fen == 0
    assert p2.carried_out_fen == p2.net_fen

    # Window 3: a ¥200 sale pays out net of the carried refund.
    w.pay("ann", "Wumart", 20_000)
    three = _close(platform, tmp_path)
    [p3] = payouts(platform=platform, window_id=three)
    assert p3.carried_in_fen == p2.carried_out_fen
    assert p3.payout_fen == 20_000 - mdr[20_000] + p2.carried_out_fen > 0
    assert p3.carried_out_fen == 0
    assert p3.value_date == value_date(p3.window_id and _end(platform, three))
    # Over the three windows the merchant is paid exactly its credits, to the fen.
    credited = sum(p.net_fen for p in (p1, p2, p3))
    assert p1.payout_fen + p2.payout_fen + p3.payout_fen == credited

    # Idempotent: a rerun returns the same payouts and writes no row.
    with platform.engine.connect() as connection:
        rows = connection.execute(sa.select(sa.func.count()).select_from(settlement_payouts))
        before = rows.scalar_one()
    assert payouts(platform=platform, window_id=two) == [p2]
    assert {p.merchant_id: p for p in payouts(platform=platform, window_id=one)} == first
    with platform.engine.connect() as connection:
        rows = connection.execute(sa.select(sa.func.count()).select_from(settlement_payouts))
        assert rows.scalar_one() == before == 4


def _end(platform: Platform, window_id: int) -> int:
    from flashpay.settlement.queries import window_by_id

    with platform.engine.connect() as connection:
        found = window_by_id(connection, window_id)
    assert found is not None
    return found.end_ns
