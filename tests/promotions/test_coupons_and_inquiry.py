"""Coupons (claim, push, single use, expiry, give back) and the discount inquiry and quote."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from flashpay.db import create_engine
from flashpay.promotions import (
    AmountOff,
    Budget,
    CampaignSpec,
    Caps,
    CardKind,
    CouponPolicy,
    Eligibility,
    Funder,
    FunderKind,
    InquiryCard,
    InquiryContext,
    PercentOff,
    PromotionError,
    PromotionRefusal,
    RandomOff,
    Stacking,
    UserKeys,
    Window,
    claim_coupon,
    coupon_wallet,
    create_campaign,
    discounts_for,
    give_back,
    push_coupons,
    quote,
    take,
)

from .builders import BOC, DRAW_KEY, NOON_NS, payment, spec, user
from .flow import choose_in, launch, pay

R = PromotionRefusal
HOUR_NS = 3600 * 1_000_000_000


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def coupon_spec() -> CampaignSpec:
    return spec(AmountOff(500), coupon=CouponPolicy(valid_seconds=3600), budget=Budget(uses=10))


def test_a_claimed_coupon_is_used_once_and_given_back(engine: Engine) -> None:
    promo = launch(engine, coupon_spec())
    me = user(1)
    owner = f"phone:{me.phone}"
    assert pay(engine, payment("before", user=me))[0].applied == ()  # no coupon yet
    with engine.begin() as connection:
        coupon_id = claim_coupon(connection, campaign_id=promo.id, owner_key=owner, now_ns=NOON_NS)
        with pytest.raises(PromotionError) as again:
            claim_coupon(connection, campaign_id=promo.id, owner_key=owner, now_ns=NOON_NS)
        assert again.value.reason is R.COUPON_ALREADY_HELD
        [held] = coupon_wallet(connection, owner_keys=me.keys(), at_ns=NOON_NS)
    assert held.id == coupon_id
    assert held.description_en == "¥5 off"
    choice, taken = pay(engine, payment("p1", user=me))
    assert taken.discount_minor == 500
    assert choice.applied[0].coupon_id == coupon_id
    with engine.connect() as connection:
        assert coupon_wallet(connection, owner_keys=me.keys(), at_ns=NOON_NS) == []
    assert pay(engine, payment("p2", user=me))[0].applied == ()  # single use
    with engine.begin() as connection:
        give_back(connection, payment_refs=["p1"], now_ns=NOON_NS)
        assert len(coupon_wallet(connection, owner_keys=me.keys(), at_ns=NOON_NS)) == 1


def test_a_coupon_expires(engine: Engine) -> None:
    promo = launch(engine, coupon_spec())
    me = user(1)
    with engine.begin() as connection:
        claim_coupon(
            connection, campaign_id=promo.id, owner_key=f"phone:{me.phone}", now_ns=NOON_NS
        )
    late = payment("late", user=me, at_ns=NOON_NS + HOUR_NS)
    choice, _ = pay(engine, late)
    assert choice.applied == ()
    assert dict(choice.skipped)[promo.id] is R.NO_COUPON


def test_one_coupon_from_two_devices_is_redeemed_once(engine: Engine) -> None:
    promo = launch(engine, coupon_spec())
    me = user(1)
    with engine.begin() as connection:
        claim_coupon(
            connection, campaign_id=promo.id, owner_key=f"phone:{me.phone}", now_ns=NOON_NS
        )
    with engine.connect() as connection:
        phone_a = choose_in(connection, payment("a", user=me))
        phone_b = choose_in(connection, payment("b", user=UserKeys(phone=me.phone, device_id="b")))
    with engine.begin() as connection:
        results = take(connection, [phone_a, phone_b])
    assert [r.refusal for r in results] == [None, R.COUPON_UNAVAILABLE]


def test_pushed_coupons_and_their_limit(engine: Engine) -> None:
    bank = Funder(FunderKind.ISSUER, BOC)
    with engine.begin() as connection:
        created = create_campaign(
            connection,
            spec=spec(
                AmountOff(500),
                funder=bank,
                coupon=CouponPolicy(valid_seconds=3600, claimable=False, coupons_max=2),
            ),
            now_ns=NOON_NS,
        )
        outcome = push_coupons(
            connection,
            campaign_id=created.id,
            owner_keys=["phone:1", "phone:2", "phone:1", "phone:3"],
            now_ns=NOON_NS,
            funder=bank,
        )
        assert outcome == {"phone:1": None, "phone:2": None, "phone:3": R.COUPONS_ALL_ISSUED}
        with pytest.raises(PromotionError) as refused:
            claim_coupon(connection, campaign_id=created.id, owner_key="phone:4", now_ns=NOON_NS)
        assert refused.value.reason is R.COUPON_NOT_CLAIMABLE


def test_the_inquiry_lists_what_applies_and_why_not(engine: Engine) -> None:
    bank = Funder(FunderKind.ISSUER, BOC)
    boc = launch(
        engine,
        spec(
            AmountOff(1000, 5000),
            funder=bank,
            eligibility=Eligibility(scenes=("supermarket",)),
            caps=Caps(user_per_day=2),
            name="BOC supermarkets",
        ),
    )
    # three campaigns of the network: stackable, so they may overlap (one exclusive per funder)
    dinner = launch(
        engine,
        spec(PercentOff(500), windows=(Window(17 * 60, 19 * 60),), stacking=Stacking.STACKABLE),
    )
    credit_only = launch(
        engine,
        spec(
            AmountOff(200),
            eligibility=Eligibility(card_kinds=(CardKind.CREDIT,)),
            stacking=Stacking.STACKABLE,
        ),
    )
    canteen = launch(
        engine,
        spec(
            AmountOff(200),
            eligibility=Eligibility(scenes=("canteen",)),
            stacking=Stacking.STACKABLE,
        ),
    )
    me = UserKeys(phone="13800000001", device_id="d1")
    cards = (
        InquiryCard(fingerprint="a" * 64, issuer_id=BOC, bin="62166100", kind=CardKind.DEBIT),
        InquiryCard(fingerprint="b" * 64, issuer_id=BOC + 1, bin="62284800", kind=CardKind.DEBIT),
    )
    with engine.connect() as connection:
        offers = discounts_for(
            connection,
            inquiry=InquiryContext(user=me, cards=cards, amount_minor=6000),
            at_ns=NOON_NS,
            scene="supermarket",
        )
    by_id = {offer.campaign_id: offer for offer in offers}
    assert canteen.id not in by_id  # another scene is not listed
    assert by_id[boc.id].card_fingerprints == ("a" * 64,)
    assert by_id[boc.id].why_not is None
    assert by_id[boc.id].description_zh == "满50减10元"
    assert by_id[boc.id].discount_minor == 1000
    assert by_id[boc.id].user_uses_left_today == 2
    assert by_id[boc.id].money_left_minor == 100_000
    assert by_id[dinner.id].why_not is R.OUTSIDE_WINDOW
    assert by_id[credit_only.id].why_not is R.WRONG_CARD_KIND


def test_the_quote_equals_what_the_payment_applies(engine: Engine) -> None:
    launch(engine, spec(RandomOff(100, 900), name="random"))
    launch(
        engine, spec(PercentOff(800, 600), name="percent", funder=Funder(FunderKind.ISSUER, BOC))
    )
    for n in range(10):
        context = payment(f"order-{n}", amount_minor=3000 + 397 * n, user=user(n))
        with engine.connect() as connection:
            quoted = quote(connection, context=context, draw_key=DRAW_KEY)
        choice, taken = pay(engine, context)
        assert quoted == choice
        assert taken.discount_minor == quoted.discount_minor


def test_the_inquiry_says_when_a_budget_ran_out(engine: Engine) -> None:
    promo = launch(engine, spec(AmountOff(1000), budget=Budget(money_minor=1500)))
    pay(engine, payment("p1", user=user(1)))
    me = UserKeys(phone="13800000002")
    with engine.connect() as connection:
        [offer] = discounts_for(
            connection, inquiry=InquiryContext(user=me, cards=()), at_ns=NOON_NS
        )
    assert offer.campaign_id == promo.id
    assert offer.why_not is R.BUDGET_EXHAUSTED
    assert offer.money_left_minor == 500
