"""A Hypothesis property: for random campaigns and payments, the quote is what the payment gets."""

from __future__ import annotations

import contextlib
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flashpay.db import create_engine
from flashpay.promotions import (
    AmountOff,
    Benefit,
    Budget,
    CampaignSpec,
    CampaignState,
    Caps,
    FixedPrice,
    Funder,
    FunderKind,
    PercentOff,
    PromotionError,
    RandomOff,
    Stacking,
    change_state,
    create_campaign,
    list_campaigns,
    quote,
)

from .builders import ACQUIRER, BOC, DRAW_KEY, MERCHANT, NETWORK, payment, spec, user
from .flow import pay

FUNDERS = [
    Funder(FunderKind.ISSUER, BOC),
    Funder(FunderKind.NETWORK, NETWORK),
    Funder(FunderKind.MERCHANT, MERCHANT),
    Funder(FunderKind.ACQUIRER, ACQUIRER),
]
benefits: st.SearchStrategy[Benefit] = st.one_of(
    st.builds(AmountOff, st.integers(1, 3000), st.integers(0, 6000)),
    st.builds(PercentOff, st.integers(1, 10_000), st.one_of(st.none(), st.integers(1, 2000))),
    st.builds(RandomOff, st.integers(1, 100), st.integers(100, 800)),
    st.builds(FixedPrice, st.integers(0, 500)),
)
campaign_specs = st.builds(
    lambda benefit, funder, stacking, money, uses, per_day: spec(
        benefit,
        funder=funder,
        stacking=Stacking.EXCLUSIVE if isinstance(benefit, FixedPrice) else stacking,
        budget=Budget(money_minor=money, uses=uses),
        caps=Caps(user_per_day=per_day),
    ),
    benefits,
    st.sampled_from(FUNDERS),
    st.sampled_from(list(Stacking)),
    st.integers(1, 10_000),
    st.integers(1, 5),
    st.one_of(st.none(), st.integers(1, 2)),
)
refs = itertools.count()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    specs=st.lists(campaign_specs, min_size=1, max_size=5),
    payments=st.lists(st.tuples(st.integers(1, 20_000), st.integers(1, 3)), min_size=1, max_size=6),
)
def test_the_quote_is_what_the_payment_applies(
    sqlite_url: str, specs: list[CampaignSpec], payments: list[tuple[int, int]]
) -> None:
    engine = create_engine(sqlite_url)
    try:
        with engine.begin() as connection:
            for campaign in list_campaigns(connection, states=[CampaignState.ACTIVE]):
                change_state(connection, campaign_id=campaign.id, action="end", now_ns=0)
            for one in specs:
                created = create_campaign(connection, spec=one, now_ns=0)
                # an exclusive clash with another of the same funder's: it stays a draft
                with contextlib.suppress(PromotionError):
                    change_state(connection, campaign_id=created.id, action="activate", now_ns=0)
        for amount_minor, who in payments:
            context = payment(f"pay-{next(refs)}", amount_minor=amount_minor, user=user(who))
            with engine.connect() as connection:
                quoted = quote(connection, context=context, draw_key=DRAW_KEY)
            choice, taken = pay(engine, context)
            assert choice == quoted
            assert taken.taken
            assert taken.discount_minor == quoted.discount_minor
            assert 0 <= quoted.discount_minor <= amount_minor
    finally:
        engine.dispose()
