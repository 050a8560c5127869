"""Real concurrency on PostgreSQL: many payments race for the last units of a budget.

Every payment *chooses* against the same snapshot taken before anyone pays (so every choice says
the budget still has room), then all of them *take* at once from their own connections. Only the
conditional UPDATEs decide: the budget is never exceeded by one fen or one use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flashpay.db import create_engine
from flashpay.promotions import (
    AmountOff,
    Budget,
    CampaignState,
    Caps,
    Choice,
    CouponPolicy,
    Funder,
    FunderKind,
    PromotionRefusal,
    Stacking,
    Taken,
    UserKeys,
    claim_coupon,
    get_campaign,
    give_back,
    take,
)
from flashpay.promotions.models import promo_redemptions
from flashpay.promotions.storage import budgets

from .builders import BOC, NOON_NS, payment, spec, user
from .flow import choose_in, launch

pytestmark = pytest.mark.postgres
PAYMENTS = 60
WORKERS = 30


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    engine = create_engine(postgres_url, pool_size=WORKERS, max_overflow=0)
    yield engine
    engine.dispose()


def race(engine: Engine, choices: Sequence[Choice]) -> list[Taken]:
    """Take every choice in its own transaction, from ``WORKERS`` threads released at once."""
    return [taken for batch in race_batches(engine, [[c] for c in choices]) for taken in batch]


def race_batches(engine: Engine, batches: Sequence[Sequence[Choice]]) -> list[list[Taken]]:
    """Take each batch in one transaction (one ``take`` call), from threads released at once.

    ``WORKERS`` stays well under PostgreSQL's 100 connections: other test workers share them.
    """
    workers = min(WORKERS, len(batches))
    start = threading.Barrier(workers)
    results: dict[int, list[Taken]] = {}

    def worker(first: int) -> None:
        start.wait(timeout=30)
        for n in range(first, len(batches), workers):
            with engine.begin() as connection:
                results[n] = take(connection, batches[n])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(worker, first) for first in range(workers)]:
            future.result()
    return [results[n] for n in range(len(batches))]


def snapshot_choices(engine: Engine, users: Callable[[int], UserKeys], count: int) -> list[Choice]:
    with engine.connect() as connection:
        return [choose_in(connection, payment(f"p{n}", user=users(n))) for n in range(count)]


def spent(engine: Engine, campaign_id: int) -> tuple[int, int]:
    with engine.connect() as connection:
        state = budgets(connection, campaign_ids=[campaign_id])[campaign_id]
    return state.spent_minor, state.uses


def state(engine: Engine, campaign_id: int) -> CampaignState:
    with engine.connect() as connection:
        found = get_campaign(connection, campaign_id=campaign_id)
    assert found is not None
    return found.state


def test_sixty_payments_for_twenty_uses(engine: Engine) -> None:
    promo = launch(engine, spec(AmountOff(300), budget=Budget(uses=20)))
    choices = snapshot_choices(engine, user, PAYMENTS)
    assert all(len(c.applied) == 1 for c in choices)  # every snapshot thinks it fits
    results = race(engine, choices)
    assert sum(1 for r in results if r.discount_minor) == 20
    assert {r.refusal for r in results if not r.taken} == {PromotionRefusal.BUDGET_EXHAUSTED}
    assert spent(engine, promo.id) == (20 * 300, 20)
    with engine.connect() as connection:
        redemptions = connection.execute(sa.select(sa.func.count()).select_from(promo_redemptions))
        assert redemptions.scalar_one() == 20
    assert state(engine, promo.id) is CampaignState.EXHAUSTED

    with engine.begin() as connection:
        given = give_back(connection, payment_refs=[r.payment_ref for r in results], now_ns=NOON_NS)
    assert len(given) == 20
    assert spent(engine, promo.id) == (0, 0)
    assert state(engine, promo.id) is CampaignState.ACTIVE


def test_a_money_budget_lands_exactly_on_zero_under_a_race(engine: Engine) -> None:
    promo = launch(engine, spec(AmountOff(700), budget=Budget(money_minor=7 * 700)))
    results = race(engine, snapshot_choices(engine, user, PAYMENTS))
    assert sum(r.discount_minor for r in results) == 7 * 700
    assert spent(engine, promo.id) == (7 * 700, 7)
    assert state(engine, promo.id) is CampaignState.EXHAUSTED


def test_one_user_on_many_devices_gets_the_daily_cap_once(engine: Engine) -> None:
    launch(engine, spec(AmountOff(100), caps=Caps(user_per_day=1), budget=Budget(uses=1000)))

    def same_phone(n: int) -> UserKeys:
        return UserKeys(phone="13800000001", device_id=f"device-{n}")

    results = race(engine, snapshot_choices(engine, same_phone, 20))
    assert sum(1 for r in results if r.discount_minor) == 1
    assert {r.refusal for r in results if not r.taken} == {PromotionRefusal.USER_DAILY_CAP}


def test_one_coupon_from_many_devices_is_redeemed_once(engine: Engine) -> None:
    promo = launch(
        engine,
        spec(AmountOff(500), coupon=CouponPolicy(valid_seconds=3600), budget=Budget(uses=50)),
    )
    with engine.begin() as connection:
        claim_coupon(
            connection, campaign_id=promo.id, owner_key="phone:13800000001", now_ns=NOON_NS
        )

    def device(n: int) -> UserKeys:
        return UserKeys(phone="13800000001", device_id=f"device-{n}")

    choices = snapshot_choices(engine, device, 10)
    assert all(c.applied[0].coupon_id is not None for c in choices)
    results = race(engine, choices)
    assert sum(1 for r in results if r.taken) == 1
    assert {r.refusal for r in results if not r.taken} == {PromotionRefusal.COUPON_UNAVAILABLE}
    assert spent(engine, promo.id) == (500, 1)  # the refused ones gave their budget step back


def test_batches_and_single_payments_race_on_two_stacked_budgets(engine: Engine) -> None:
    """Batches in both campaign orders and singles at once: no deadlock, no unit too many."""
    bank = launch(
        engine,
        spec(
            AmountOff(200),
            funder=Funder(FunderKind.ISSUER, BOC),
            stacking=Stacking.STACKABLE,
            budget=Budget(uses=20),
        ),
    )
    network = launch(
        engine, spec(AmountOff(100), stacking=Stacking.STACKABLE, budget=Budget(uses=15))
    )
    choices = snapshot_choices(engine, user, PAYMENTS)
    assert all(len(c.applied) == 2 for c in choices)
    batches: list[list[Choice]] = []
    for n in range(0, 40, 5):  # eight batches of five, every other one reversed
        batch = choices[n : n + 5]
        batches.append(batch if n % 10 else batch[::-1])
    batches += [[c] for c in choices[40:]]  # twenty single payments
    results = [t for batch in race_batches(engine, batches) for t in batch]
    taken = [t for t in results if t.taken]
    assert len(taken) == 15  # the network's 15 uses bound every whole choice
    assert {t.discount_minor for t in taken} == {300}
    assert spent(engine, network.id) == (15 * 100, 15)
    assert spent(engine, bank.id) == (15 * 200, 15)  # refused choices gave the bank's use back
