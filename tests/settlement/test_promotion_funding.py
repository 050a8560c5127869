"""A discounted payment's legs (transfer codes 12 and 13) show in the positions as promotion
funding, not "other" (SQLite and PostgreSQL): an acquirer-funded ¥10 off ¥100 leaves the card's
issuer owed the discount by the network and the funding acquirer owing it, to the fen."""

from __future__ import annotations

from pathlib import Path

from flashpay.clock import NS_PER_SECOND, FakeClock
from flashpay.institutions.service import get_institution
from flashpay.platform import Platform
from flashpay.promotions import change_state, create_campaign, parse_campaign
from flashpay.settlement import camt053
from flashpay.settlement.close import close_window
from flashpay.settlement.queries import window_files
from flashpay.settlement.windows import Schedule, next_cutoff

from .world import World

SCHEDULE = Schedule(cutoffs=("06:00", "12:00", "18:00", "23:00"), close_delay_seconds=5)


def _campaign(platform: Platform, funder: str) -> None:
    inst = get_institution(platform=platform, code=funder)
    assert inst is not None
    spec = parse_campaign({
        "name": f"{funder}: 10 off 50",
        "funder": {"kind": "acquirer", "id": inst.id},
        "starts_at": "2026-11-01T00:00:00+08:00",
        "ends_at": "2027-01-01T00:00:00+08:00",
        "benefit": {"kind": "amount_off", "off_minor": 1000, "threshold_minor": 5000},
        "budget": {"money_minor": 100_000, "uses": 100},
    })  # fmt: skip
    now = platform.clock.now_ns()
    with platform.engine.begin() as connection:
        made = create_campaign(connection, spec=spec, now_ns=now)
        change_state(connection, campaign_id=made.id, action="activate", now_ns=now)


def test_discount_legs_are_promotion_funding(service_platform: Platform, tmp_path: Path) -> None:
    platform = service_platform
    clock = platform.clock
    assert isinstance(clock, FakeClock)
    w = World(platform)
    w.person("ann", "BOC")
    w.shop("Wumart", "UMS")
    _campaign(platform, "UMS")
    paid = w.pay("ann", "Wumart", 10_000)
    assert paid.discount == 1_000
    cut = next_cutoff(SCHEDULE, clock.now_ns())
    clock.set_ns(cut + 5 * NS_PER_SECOND)
    closed = close_window(platform=platform, end_ns=cut, schedule=SCHEDULE, directory=tmp_path)
    by = {p.member: p for p in closed.positions}
    assert sum(p.net_fen for p in closed.positions) == 0
    assert all(p.net_fen == p.books_net_fen for p in closed.positions)
    assert all(p.other_fen == 0 for p in closed.positions)
    # The network owes BOC the discount it gave the card; UMS, the funder, pays it.
    assert by["BOC"].promotion_fen == 1_000
    assert by["UMS"].promotion_fen == -1_000
    assert by["CUP"].promotion_fen == 0
    # BOC's net: it owes the purchase less interchange (0.45 %) and is owed the discount.
    assert by["BOC"].net_fen == -(10_000 - 45) + 1_000
    assert by["UMS"].net_fen == (10_000 - 45 - 7) - 1_000
    with platform.engine.connect() as connection:
        files = window_files(connection, closed.window.id)
    statement = next(f for f in files if f.member == "UMS" and f.kind == "camt053")
    data = Path(statement.path).read_bytes()
    assert camt053.check_statement(data) == []
    assert camt053.sum_entries_fen(data, ("PROMOTION",)) == -1_000
