"""The choice rule: larger discount, then priority, then lower id; stacks one benefit per funder."""

from __future__ import annotations

from random import Random

from hypothesis import given, settings
from hypothesis import strategies as st

from flashpay.promotions import (
    AmountOff,
    Benefit,
    Budget,
    Campaign,
    Eligibility,
    FixedPrice,
    Funder,
    FunderKind,
    PercentOff,
    PromotionRefusal,
    RandomOff,
    Stacking,
    Usage,
    choose,
)
from flashpay.promotions.usage import BudgetState

from .builders import ACQUIRER, BOC, DRAW_KEY, MERCHANT, NETWORK, campaign, payment

ISSUER = Funder(FunderKind.ISSUER, BOC)
NET = Funder(FunderKind.NETWORK, NETWORK)
SHOP = Funder(FunderKind.MERCHANT, MERCHANT)
ACQ = Funder(FunderKind.ACQUIRER, ACQUIRER)


def picked(
    campaigns: list[Campaign], amount_minor: int = 6000, usage: Usage | None = None
) -> list[tuple[int, int]]:
    choice = choose(
        payment(amount_minor=amount_minor), campaigns, usage or Usage(), draw_key=DRAW_KEY
    )
    return [(item.campaign_id, item.discount_minor) for item in choice.applied]


def test_no_campaign_no_discount() -> None:
    choice = choose(payment(), [], Usage(), draw_key=DRAW_KEY)
    assert choice.applied == ()
    assert choice.paid_minor == 6000


def test_the_larger_discount_wins() -> None:
    assert picked([campaign(1, AmountOff(500)), campaign(2, AmountOff(800))]) == [(2, 800)]


def test_on_equal_discounts_the_higher_priority_wins() -> None:
    low, high = campaign(1, AmountOff(500), priority=1), campaign(2, AmountOff(500), priority=9)
    assert picked([low, high]) == [(2, 500)]


def test_on_equal_discount_and_priority_the_lower_id_wins() -> None:
    assert picked([campaign(7, AmountOff(500)), campaign(3, AmountOff(500))]) == [(3, 500)]


def test_stackable_benefits_of_different_funders_add_up() -> None:
    bank = campaign(1, AmountOff(500), funder=ISSUER, stacking=Stacking.STACKABLE)
    net = campaign(2, AmountOff(300), funder=NET, stacking=Stacking.STACKABLE)
    assert picked([bank, net]) == [(1, 500), (2, 300)]


def test_at_most_one_benefit_per_funder_in_a_stack() -> None:
    first = campaign(1, AmountOff(500), funder=ISSUER, stacking=Stacking.STACKABLE)
    second = campaign(2, AmountOff(300), funder=ISSUER, stacking=Stacking.STACKABLE)
    third = campaign(3, AmountOff(100), funder=SHOP, stacking=Stacking.STACKABLE)
    assert picked([first, second, third]) == [(1, 500), (3, 100)]


def test_an_exclusive_benefit_beats_a_smaller_stack() -> None:
    exclusive = campaign(1, AmountOff(900), funder=NET)
    a = campaign(2, AmountOff(500), funder=ISSUER, stacking=Stacking.STACKABLE)
    b = campaign(3, AmountOff(300), funder=SHOP, stacking=Stacking.STACKABLE)
    assert picked([exclusive, a, b]) == [(1, 900)]


def test_a_larger_stack_beats_an_exclusive_benefit() -> None:
    exclusive = campaign(1, AmountOff(700), funder=NET)
    a = campaign(2, AmountOff(500), funder=ISSUER, stacking=Stacking.STACKABLE)
    b = campaign(3, AmountOff(300), funder=SHOP, stacking=Stacking.STACKABLE)
    assert picked([exclusive, a, b]) == [(2, 500), (3, 300)]


def test_on_a_tie_the_single_best_wins_over_the_stack() -> None:
    exclusive = campaign(1, AmountOff(800), funder=NET)
    a = campaign(2, AmountOff(500), funder=ISSUER, stacking=Stacking.STACKABLE)
    b = campaign(3, AmountOff(300), funder=SHOP, stacking=Stacking.STACKABLE)
    assert picked([exclusive, a, b]) == [(1, 800)]


def test_a_stack_always_leaves_one_fen_to_pay() -> None:
    a = campaign(1, AmountOff(600), funder=ISSUER, stacking=Stacking.STACKABLE)
    b = campaign(2, AmountOff(600), funder=SHOP, stacking=Stacking.STACKABLE)
    c = campaign(3, AmountOff(600), funder=NET, stacking=Stacking.STACKABLE)
    choice = choose(payment(amount_minor=1000), [a, b, c], Usage(), draw_key=DRAW_KEY)
    assert [(i.campaign_id, i.discount_minor) for i in choice.applied] == [(1, 600), (2, 399)]
    assert choice.paid_minor == 1


def test_a_fixed_price_may_make_it_free() -> None:
    ride = campaign(1, FixedPrice(0), eligibility=Eligibility(scenes=("supermarket",)))
    choice = choose(payment(amount_minor=400), [ride], Usage(), draw_key=DRAW_KEY)
    assert choice.paid_minor == 0
    assert choice.discount_minor == 400


def test_skipped_campaigns_say_why() -> None:
    wrong = campaign(1, AmountOff(500), eligibility=Eligibility(scenes=("bus",)))
    spent = campaign(2, AmountOff(500))
    usage = Usage(budgets={2: BudgetState(100_000, 100, uses=100)})
    worthless = campaign(3, FixedPrice(9000))
    choice = choose(payment(), [wrong, spent, worthless], usage, draw_key=DRAW_KEY)
    assert choice.applied == ()
    assert choice.skipped == (
        (1, PromotionRefusal.WRONG_SCENE),
        (2, PromotionRefusal.BUDGET_EXHAUSTED),
        (3, PromotionRefusal.BELOW_MINIMUM),
    )


def test_a_campaign_whose_budget_cannot_pay_this_discount_is_skipped() -> None:
    percent = campaign(1, PercentOff(1000), budget=Budget(money_minor=1000))
    usage = Usage(budgets={1: BudgetState(1000, None, spent_minor=500)})
    assert picked([percent], amount_minor=6000, usage=usage) == []
    assert picked([percent], amount_minor=5000, usage=usage) == [(1, 500)]


def test_the_choice_carries_what_take_needs() -> None:
    context = payment()
    choice = choose(context, [campaign(1, AmountOff(500))], Usage(coupons={}), draw_key=DRAW_KEY)
    assert choice.user_keys == context.user.keys()
    assert choice.card_fingerprint == context.user.card_fingerprint
    assert choice.day == "2026-12-01"


funders = st.sampled_from([ISSUER, NET, SHOP, ACQ])
benefit_strategy: st.SearchStrategy[Benefit] = st.one_of(
    st.builds(AmountOff, st.integers(1, 5000), st.integers(0, 8000)),
    st.builds(PercentOff, st.integers(1, 10_000), st.one_of(st.none(), st.integers(1, 3000))),
    st.builds(RandomOff, st.integers(1, 100), st.integers(100, 900)),
)


@st.composite
def campaign_lists(draw: st.DrawFn) -> list[Campaign]:
    count = draw(st.integers(0, 6))
    return [
        campaign(
            n,
            draw(benefit_strategy),
            funder=draw(funders),
            priority=draw(st.integers(0, 3)),
            stacking=draw(st.sampled_from(list(Stacking))),
        )
        for n in range(1, count + 1)
    ]


@settings(max_examples=200)
@given(campaigns=campaign_lists(), amount_minor=st.integers(1, 20_000), rng=st.randoms())
def test_the_choice_is_deterministic_whatever_the_order(
    campaigns: list[Campaign], amount_minor: int, rng: Random
) -> None:
    shuffled = list(campaigns)
    rng.shuffle(shuffled)
    context = payment(amount_minor=amount_minor)
    first = choose(context, campaigns, Usage(), draw_key=DRAW_KEY)
    second = choose(context, shuffled, Usage(), draw_key=DRAW_KEY)
    assert first == second
    assert 0 <= first.discount_minor <= amount_minor - 1 or first.discount_minor == 0
    assert len({item.funder for item in first.applied}) == len(first.applied)
    alone = [choose(context, [c], Usage(), draw_key=DRAW_KEY).discount_minor for c in campaigns]
    assert first.discount_minor >= max(alone, default=0)  # never less than the best alone
