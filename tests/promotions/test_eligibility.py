"""Eligibility, one dimension at a time: each rule lets the right payment in, names the refusal."""

from __future__ import annotations

from typing import Any

import pytest

from flashpay.promotions import (
    AmountOff,
    Budget,
    CampaignState,
    Caps,
    CardKind,
    CouponPolicy,
    Eligibility,
    Funder,
    FunderKind,
    NewUser,
    PaymentMode,
    PromotionRefusal,
    Usage,
    UserKeys,
    Window,
)
from flashpay.promotions.context import Facts, china_day, china_minute_of_day
from flashpay.promotions.eligibility import cap_refusal, could_clash, refusal
from flashpay.promotions.usage import BudgetState

from .builders import ACQUIRER, BOC, DAY_NS, MERCHANT, NOON_NS, campaign, payment, spec

R = PromotionRefusal
MINUTE_NS = 60 * 1_000_000_000


def test_china_time() -> None:
    assert china_minute_of_day(NOON_NS) == 12 * 60
    assert china_day(NOON_NS) == "2026-12-01"
    assert china_day(NOON_NS + 12 * 60 * MINUTE_NS) == "2026-12-02"  # midnight in Beijing


@pytest.mark.parametrize(
    ("rules", "matching", "other", "reason"),
    [
        ({"scenes": ("canteen",)}, {"scene": "canteen"}, {"scene": "bus"}, R.WRONG_SCENE),
        ({"merchant_ids": (5,)}, {"merchant_id": 5}, {"merchant_id": 6}, R.WRONG_MERCHANT),
        ({"mccs": ("5812",)}, {"mcc": "5812"}, {"mcc": "5411"}, R.WRONG_MCC),
        ({"cities": ("Chengdu",)}, {"city": "Chengdu"}, {"city": "Beijing"}, R.WRONG_CITY),
        (
            {"modes": (PaymentMode.TRANSIT,)},
            {"mode": PaymentMode.TRANSIT},
            {"mode": PaymentMode.SCAN},
            R.WRONG_MODE,
        ),
        ({"issuer_ids": (9,)}, {"issuer_id": 9}, {"issuer_id": 8}, R.WRONG_ISSUER),
        (
            {"bin_prefixes": ("622848",)},
            {"bin": "62284812"},
            {"bin": "62166100"},
            R.WRONG_ISSUER,
        ),
        (
            {"card_kinds": (CardKind.CREDIT,)},
            {"card_kind": CardKind.CREDIT},
            {"card_kind": CardKind.DEBIT},
            R.WRONG_CARD_KIND,
        ),
        (
            {"new_user": NewUser.FIRST_EVER},
            {"first_payment_ever": True},
            {"first_payment_ever": False},
            R.NOT_NEW_USER,
        ),
        (
            {"new_user": NewUser.FIRST_IN_SCENE},
            {"first_in_scene": True},
            {"first_in_scene": False},
            R.NOT_NEW_USER,
        ),
        (
            {"min_amount_minor": 2000},
            {"amount_minor": 2000},
            {"amount_minor": 1999},
            R.BELOW_MINIMUM,
        ),
    ],
)
def test_each_dimension(
    rules: dict[str, Any], matching: dict[str, Any], other: dict[str, Any], reason: R
) -> None:
    promo = campaign(benefit=AmountOff(100), eligibility=Eligibility(**rules))
    assert refusal(promo, payment(**matching).facts()) is None
    assert refusal(promo, payment(**other).facts()) is reason


def test_an_issuer_or_a_bin_prefix_matches() -> None:
    promo = campaign(eligibility=Eligibility(issuer_ids=(9,), bin_prefixes=("621661",)))
    assert refusal(promo, payment(issuer_id=9, bin="99999999").facts()) is None
    assert refusal(promo, payment(issuer_id=8, bin="62166100").facts()) is None
    assert refusal(promo, payment(issuer_id=8, bin="99999999").facts()) is R.WRONG_ISSUER


@pytest.mark.parametrize(
    ("funder", "fields", "reason"),
    [
        (Funder(FunderKind.ISSUER, BOC), {"issuer_id": BOC + 1}, R.WRONG_ISSUER),
        (Funder(FunderKind.MERCHANT, MERCHANT), {"merchant_id": MERCHANT + 1}, R.WRONG_MERCHANT),
        (Funder(FunderKind.ACQUIRER, ACQUIRER), {"acquirer_id": ACQUIRER + 1}, R.WRONG_MERCHANT),
    ],
)
def test_a_funder_funds_only_its_own_business(
    funder: Funder, fields: dict[str, Any], reason: R
) -> None:
    promo = campaign(funder=funder)
    assert refusal(promo, payment().facts()) is None
    assert refusal(promo, payment(**fields).facts()) is reason


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (CampaignState.DRAFT, R.NOT_ACTIVE),
        (CampaignState.PAUSED, R.NOT_ACTIVE),
        (CampaignState.ENDED, R.NOT_ACTIVE),
        (CampaignState.EXHAUSTED, R.BUDGET_EXHAUSTED),
    ],
)
def test_only_an_active_campaign_applies(state: CampaignState, reason: R) -> None:
    assert refusal(campaign(state=state), payment().facts()) is reason


def test_the_period_is_half_open() -> None:
    promo = campaign(starts_at_ns=NOON_NS, ends_at_ns=NOON_NS + DAY_NS)
    assert refusal(promo, payment(at_ns=NOON_NS).facts()) is None
    assert refusal(promo, payment(at_ns=NOON_NS - 1).facts()) is R.OUTSIDE_PERIOD
    assert refusal(promo, payment(at_ns=NOON_NS + DAY_NS).facts()) is R.OUTSIDE_PERIOD


@pytest.mark.parametrize(
    ("minutes_from_noon", "reason"),
    [(-61, R.OUTSIDE_WINDOW), (-60, None), (89, None), (90, R.OUTSIDE_WINDOW), (300, None)],
)
def test_daily_windows_in_china_time(minutes_from_noon: int, reason: R | None) -> None:
    lunch = Window(11 * 60, 13 * 60 + 30)
    evening = Window(17 * 60, 18 * 60)
    promo = campaign(windows=(lunch, evening))
    at_ns = NOON_NS + minutes_from_noon * MINUTE_NS
    assert refusal(promo, payment(at_ns=at_ns).facts()) is reason


def test_the_first_failing_check_is_named() -> None:
    promo = campaign(eligibility=Eligibility(scenes=("bus",), cities=("Chengdu",)))
    assert refusal(promo, payment().facts()) is R.WRONG_SCENE


def test_unknown_facts_pass() -> None:
    promo = campaign(eligibility=Eligibility(scenes=("bus",), card_kinds=(CardKind.CREDIT,)))
    assert refusal(promo, Facts(at_ns=NOON_NS)) is None
    assert refusal(promo, Facts(at_ns=NOON_NS, scene="canteen")) is R.WRONG_SCENE


def test_the_benefit_threshold_counts_as_a_minimum() -> None:
    promo = campaign(benefit=AmountOff(1000, 5000))
    assert refusal(promo, payment(amount_minor=4999).facts()) is R.BELOW_MINIMUM


KEYS = UserKeys(phone="13800000001", device_id="d1", card_fingerprint="c1").keys()


@pytest.mark.parametrize(
    ("caps", "budget", "usage", "reason"),
    [
        (Caps(), Budget(money_minor=1000), Usage(), None),
        (
            Caps(),
            Budget(money_minor=1000),
            Usage(budgets={1: BudgetState(1000, None, spent_minor=901)}),
            R.BUDGET_EXHAUSTED,
        ),
        (
            Caps(),
            Budget(money_minor=1000),
            Usage(budgets={1: BudgetState(1000, None, spent_minor=900)}),
            None,
        ),
        (
            Caps(),
            Budget(uses=3),
            Usage(budgets={1: BudgetState(None, 3, uses=3)}),
            R.BUDGET_EXHAUSTED,
        ),
        (
            Caps(user_per_day=1),
            Budget(uses=9),
            Usage(user_today={(1, "device:d1"): 1}),
            R.USER_DAILY_CAP,
        ),
        (
            Caps(user_per_campaign=2),
            Budget(uses=9),
            Usage(user_total={(1, "phone:13800000001"): 2}),
            R.USER_CAMPAIGN_CAP,
        ),
        (Caps(user_per_campaign=2), Budget(uses=9), Usage(user_total={(1, "phone:x"): 2}), None),
        (Caps(card_per_campaign=1), Budget(uses=9), Usage(card_total={(1, "c1"): 1}), R.CARD_CAP),
    ],
)
def test_budget_and_caps(caps: Caps, budget: Budget, usage: Usage, reason: R | None) -> None:
    promo = campaign(benefit=AmountOff(100), caps=caps, budget=budget)
    found = cap_refusal(promo, usage, user_keys=KEYS, card_fingerprint="c1", discount_minor=100)
    assert found is reason


def test_a_coupon_campaign_needs_a_coupon() -> None:
    promo = campaign(coupon=CouponPolicy(valid_seconds=3600))
    args: dict[str, Any] = {"user_keys": KEYS, "card_fingerprint": "c1", "discount_minor": 100}
    assert cap_refusal(promo, Usage(), **args) is R.NO_COUPON
    assert cap_refusal(promo, Usage(coupons={1: 77}), **args) is None


def test_one_user_is_any_of_the_keys() -> None:
    other_account_same_phone = UserKeys(phone="13800000001", device_id="d2").keys()
    promo = campaign(caps=Caps(user_per_day=1))
    usage = Usage(user_today={(1, "phone:13800000001"): 1})
    found = cap_refusal(
        promo, usage, user_keys=other_account_same_phone, card_fingerprint=None, discount_minor=1
    )
    assert found is R.USER_DAILY_CAP


@pytest.mark.parametrize(
    ("a", "b", "clash"),
    [
        pytest.param({}, {}, True, id="both-everything"),
        pytest.param(
            {"eligibility": Eligibility(scenes=("bus",))},
            {"eligibility": Eligibility(scenes=("subway",))},
            False,
            id="different-scenes",
        ),
        pytest.param(
            {"eligibility": Eligibility(scenes=("bus", "subway"))},
            {"eligibility": Eligibility(scenes=("subway",))},
            True,
            id="a-common-scene",
        ),
        pytest.param(
            {"windows": (Window(660, 810),)},
            {"windows": (Window(810, 900),)},
            False,
            id="windows-touch-but-do-not-overlap",
        ),
        pytest.param(
            {"starts_at_ns": NOON_NS, "ends_at_ns": NOON_NS + DAY_NS},
            {"starts_at_ns": NOON_NS + DAY_NS, "ends_at_ns": NOON_NS + 2 * DAY_NS},
            False,
            id="consecutive-periods",
        ),
        pytest.param(
            {"eligibility": Eligibility(card_kinds=(CardKind.DEBIT,))},
            {"eligibility": Eligibility(card_kinds=(CardKind.CREDIT,))},
            False,
            id="debit-and-credit",
        ),
        pytest.param(
            {"eligibility": Eligibility(issuer_ids=(3,))},
            {"eligibility": Eligibility(issuer_ids=(4,))},
            False,
            id="different-issuers",
        ),
        pytest.param(
            {"eligibility": Eligibility(bin_prefixes=("621661",))},
            {"eligibility": Eligibility(bin_prefixes=("62166100",))},
            True,
            id="nested-bin-prefixes",
        ),
        pytest.param(
            {"eligibility": Eligibility(issuer_ids=(3,))},
            {"eligibility": Eligibility(bin_prefixes=("622848",))},
            True,
            id="issuer-against-bin-is-conservative",
        ),
    ],
)
def test_could_clash(a: dict[str, Any], b: dict[str, Any], clash: bool) -> None:
    assert could_clash(spec(**a), spec(**b)) is clash
    assert could_clash(spec(**b), spec(**a)) is clash
