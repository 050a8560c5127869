"""Campaigns, budgets, caps and give-backs in the database, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

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
    Eligibility,
    Funder,
    FunderKind,
    PercentOff,
    PromotionError,
    PromotionRefusal,
    RandomOff,
    Stacking,
    UserKeys,
    change_state,
    create_campaign,
    get_campaign,
    give_back,
    list_campaigns,
    take,
    top_up,
)
from flashpay.promotions.models import promo_redemptions
from flashpay.promotions.report import campaign_report
from flashpay.promotions.storage import budgets

from .builders import BOC, DAY_NS, NOON_NS, payment, spec, user
from .flow import choose_in, launch, pay

R = PromotionRefusal


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def state_of(engine: Engine, campaign_id: int) -> CampaignState:
    with engine.connect() as connection:
        found = get_campaign(connection, campaign_id=campaign_id)
    assert found is not None
    return found.state


def budget_of(engine: Engine, campaign_id: int) -> tuple[int, int]:
    with engine.connect() as connection:
        state = budgets(connection, campaign_ids=[campaign_id])[campaign_id]
    return state.spent_minor, state.uses


def test_the_lifecycle(engine: Engine) -> None:
    with engine.begin() as connection:
        created = create_campaign(connection, spec=spec(), now_ns=NOON_NS)
        assert created.state is CampaignState.DRAFT
        assert get_campaign(connection, campaign_id=created.id) == created
        for action, state in [
            ("activate", CampaignState.ACTIVE),
            ("pause", CampaignState.PAUSED),
            ("activate", CampaignState.ACTIVE),
            ("end", CampaignState.ENDED),
        ]:
            moved = change_state(connection, campaign_id=created.id, action=action, now_ns=NOON_NS)
            assert moved.state is state
        with pytest.raises(PromotionError) as refused:
            change_state(connection, campaign_id=created.id, action="activate", now_ns=NOON_NS)
        assert refused.value.reason is R.INVALID_TRANSITION
        with pytest.raises(PromotionError) as missing:
            change_state(connection, campaign_id=999, action="pause", now_ns=NOON_NS)
        assert missing.value.reason is R.CAMPAIGN_NOT_FOUND
        assert [c.id for c in list_campaigns(connection, states=[CampaignState.ENDED])] == [
            created.id
        ]


def test_a_funder_manages_only_its_own_campaigns(engine: Engine) -> None:
    bank = Funder(FunderKind.ISSUER, BOC)
    with engine.begin() as connection:
        created = create_campaign(connection, spec=spec(funder=bank), now_ns=NOON_NS)
        with pytest.raises(PromotionError) as refused:
            change_state(
                connection,
                campaign_id=created.id,
                action="activate",
                now_ns=NOON_NS,
                funder=Funder(FunderKind.ISSUER, BOC + 1),
            )
        assert refused.value.reason is R.NOT_FUNDER
        assert [c.id for c in list_campaigns(connection, funder=bank)] == [created.id]


def test_a_payment_takes_its_discount_once(engine: Engine) -> None:
    promo = launch(engine, spec(AmountOff(1000, 5000)))
    choice, taken = pay(engine, payment("p1", 6000))
    assert taken.taken
    assert taken.discount_minor == 1000
    assert choice.paid_minor == 5000
    assert budget_of(engine, promo.id) == (1000, 1)
    with engine.begin() as connection:
        [again] = take(connection, [choice])
    assert again.refusal is R.ALREADY_TAKEN
    assert budget_of(engine, promo.id) == (1000, 1)


def test_a_uses_budget_runs_out_and_a_give_back_reopens_it(engine: Engine) -> None:
    promo = launch(engine, spec(AmountOff(100), budget=Budget(uses=3)))
    results = [pay(engine, payment(f"p{n}", user=user(n))) for n in range(4)]
    assert [taken.discount_minor for _, taken in results] == [100, 100, 100, 0]
    assert state_of(engine, promo.id) is CampaignState.EXHAUSTED
    assert results[3][0].skipped == ()  # an exhausted campaign is not even a candidate
    with engine.begin() as connection:
        given = give_back(connection, payment_refs=["p1"], now_ns=NOON_NS)
        assert [(g.campaign_id, g.discount_minor) for g in given] == [(promo.id, 100)]
        assert give_back(connection, payment_refs=["p1"], now_ns=NOON_NS) == []  # once
    assert budget_of(engine, promo.id) == (200, 2)
    assert state_of(engine, promo.id) is CampaignState.ACTIVE
    assert pay(engine, payment("p9", user=user(9)))[1].taken


def test_a_money_budget_lands_exactly_on_zero(engine: Engine) -> None:
    promo = launch(engine, spec(AmountOff(1000), budget=Budget(money_minor=3000)))
    takes = [pay(engine, payment(f"p{n}", user=user(n)))[1] for n in range(5)]
    assert [t.discount_minor for t in takes] == [1000, 1000, 1000, 0, 0]
    assert budget_of(engine, promo.id) == (3000, 3)
    assert state_of(engine, promo.id) is CampaignState.EXHAUSTED


def test_a_stale_choice_is_refused_by_the_budget_itself(engine: Engine) -> None:
    """Two payments choose against the same snapshot; only the one that fits is taken."""
    promo = launch(engine, spec(AmountOff(1000), budget=Budget(money_minor=1500)))
    with engine.connect() as connection:
        first = choose_in(connection, payment("a", user=user(1)))
        second = choose_in(connection, payment("b", user=user(2)))
    with engine.begin() as connection:
        results = take(connection, [first, second])
    assert [r.refusal for r in results] == [None, R.BUDGET_EXHAUSTED]
    assert budget_of(engine, promo.id) == (1000, 1)
    with engine.connect() as connection:
        refs = connection.execute(sa.select(promo_redemptions.c.payment_ref)).scalars().all()
    assert refs == ["a"]


def test_one_user_is_any_key_and_the_day_is_china_time(engine: Engine) -> None:
    launch(engine, spec(AmountOff(100), caps=Caps(user_per_day=1, user_per_campaign=2)))
    me = user(1)
    second_account = UserKeys(phone=me.phone, device_id="another-phone", card_fingerprint="ff")
    assert pay(engine, payment("p1", user=me))[1].taken
    assert pay(engine, payment("p2", user=second_account))[0].applied == ()
    stale = Choice(
        payment_ref="p3",
        amount_minor=6000,
        at_ns=NOON_NS,
        day="2026-12-01",
        scene="supermarket",
        issuer_id=BOC,
        user_keys=second_account.keys(),
        card_fingerprint="ff",
        applied=pay(engine, payment("p0", user=user(5)))[0].applied,
    )
    with engine.begin() as connection:
        [refused] = take(connection, [stale])
    assert refused.refusal is R.USER_DAILY_CAP
    tomorrow = NOON_NS + DAY_NS
    assert pay(engine, payment("p4", user=second_account, at_ns=tomorrow))[1].taken
    day_after = tomorrow + DAY_NS
    _, third = pay(engine, payment("p5", user=me, at_ns=day_after))
    assert third.discount_minor == 0  # the campaign cap of 2 per user is reached


def test_a_choice_is_taken_whole_or_not_at_all(engine: Engine) -> None:
    bank = launch(
        engine,
        spec(
            AmountOff(500),
            funder=Funder(FunderKind.ISSUER, BOC),
            stacking=Stacking.STACKABLE,
            caps=Caps(card_per_campaign=5),
        ),
    )
    network = launch(
        engine, spec(AmountOff(300), stacking=Stacking.STACKABLE, caps=Caps(user_per_day=1))
    )
    choice, taken = pay(engine, payment("p1"))
    assert [i.campaign_id for i in choice.applied] == [bank.id, network.id]
    assert taken.discount_minor == 800
    retry = replace(choice, payment_ref="p2")  # a stale copy: the network's daily cap refuses it
    with engine.begin() as connection:
        [refused] = take(connection, [retry])
    assert refused.refusal is R.USER_DAILY_CAP
    assert budget_of(engine, bank.id) == (500, 1)  # the bank's part was undone
    assert budget_of(engine, network.id) == (300, 1)


def test_card_cap(engine: Engine) -> None:
    launch(engine, spec(AmountOff(100), caps=Caps(card_per_campaign=1)))
    card = "c" * 64
    first = UserKeys(phone="1", card_fingerprint=card)
    other_person_same_card = UserKeys(phone="2", card_fingerprint=card)
    assert pay(engine, payment("p1", user=first))[1].taken
    choice, _ = pay(engine, payment("p2", user=other_person_same_card))
    assert choice.applied == ()
    assert dict(choice.skipped)[1] in {R.CARD_CAP, R.USER_CAMPAIGN_CAP}


def test_paused_campaign_is_refused_at_take(engine: Engine) -> None:
    promo = launch(engine, spec(PercentOff(1000, 300)))
    with engine.connect() as connection:
        choice = choose_in(connection, payment("p1"))
    with engine.begin() as connection:
        change_state(connection, campaign_id=promo.id, action="pause", now_ns=NOON_NS)
    with engine.begin() as connection:
        [refused] = take(connection, [choice])
    assert refused.refusal is R.NOT_ACTIVE


def test_top_up_reopens_an_exhausted_campaign(engine: Engine) -> None:
    promo = launch(engine, spec(RandomOff(100, 300), budget=Budget(money_minor=350)))
    discounts = [pay(engine, payment(f"p{n}", user=user(n)))[1].discount_minor for n in range(6)]
    spent, uses = budget_of(engine, promo.id)
    assert sum(discounts) == spent <= 350  # a later, smaller draw may still fit
    assert uses == sum(1 for d in discounts if d > 0)
    if 350 - spent < 100:
        assert state_of(engine, promo.id) is CampaignState.EXHAUSTED
    with engine.begin() as connection:
        top_up(connection, campaign_id=promo.id, money_minor=10_000, now_ns=NOON_NS)
    assert state_of(engine, promo.id) is CampaignState.ACTIVE
    assert pay(engine, payment("after-top-up", user=user(99)))[1].discount_minor >= 100
    with engine.begin() as connection, pytest.raises(PromotionError) as refused:
        top_up(connection, campaign_id=promo.id, money_minor=-5, now_ns=NOON_NS)
    assert refused.value.reason is R.INVALID_BUDGET


def test_a_funder_cannot_run_two_clashing_exclusive_campaigns(engine: Engine) -> None:
    bank = Funder(FunderKind.ISSUER, BOC)
    first = launch(engine, spec(funder=bank, eligibility=Eligibility(scenes=("supermarket",))))
    with engine.begin() as connection:
        clashing = create_campaign(connection, spec=spec(funder=bank), now_ns=NOON_NS)
        elsewhere = create_campaign(
            connection,
            spec=spec(funder=bank, eligibility=Eligibility(scenes=("bus",))),
            now_ns=NOON_NS,
        )
        stackable = create_campaign(
            connection, spec=spec(funder=bank, stacking=Stacking.STACKABLE), now_ns=NOON_NS
        )
        other_funder = create_campaign(connection, spec=spec(), now_ns=NOON_NS)
    with engine.begin() as connection, pytest.raises(PromotionError) as refused:
        change_state(connection, campaign_id=clashing.id, action="activate", now_ns=NOON_NS)
    assert refused.value.reason is R.OVERLAPPING_EXCLUSIVE
    assert refused.value.details == {"campaign_id": clashing.id, "overlaps": first.id}
    with engine.begin() as connection:
        for campaign_id in (elsewhere.id, stackable.id, other_funder.id):
            change_state(connection, campaign_id=campaign_id, action="activate", now_ns=NOON_NS)
        for ended in (first.id, elsewhere.id):  # ended campaigns clash with nothing
            change_state(connection, campaign_id=ended, action="end", now_ns=NOON_NS)
        change_state(connection, campaign_id=clashing.id, action="activate", now_ns=NOON_NS)


def test_the_campaign_report(engine: Engine) -> None:
    promo = launch(engine, spec(AmountOff(100), budget=Budget(money_minor=10_000)))
    pay(engine, payment("p1", 6000, user=user(1)))
    pay(engine, payment("p2", 7000, user=user(2), issuer_id=BOC + 1, bin="62284800"))
    pay(engine, payment("p3", 8000, user=user(3), at_ns=NOON_NS + DAY_NS))
    with engine.begin() as connection:
        give_back(connection, payment_refs=["p3"], now_ns=NOON_NS)
        report = campaign_report(connection, campaign_id=promo.id)
    assert (report.uses, report.discount_minor, report.volume_minor) == (2, 200, 13_000)
    assert report.money_left_minor == 9_800
    assert [(line.key, line.uses) for line in report.by_day] == [("2026-12-01", 2)]
    assert [(line.key, line.uses) for line in report.by_issuer] == [
        (str(BOC), 1),
        (str(BOC + 1), 1),
    ]
    assert [(line.key, line.volume_minor) for line in report.by_scene] == [("supermarket", 13_000)]
