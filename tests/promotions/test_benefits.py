"""The benefit arithmetic: each kind, caps, rounding half down, the reproducible draw, refunds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashpay.promotions import (
    AmountOff,
    Benefit,
    FixedPrice,
    PercentOff,
    RandomOff,
    describe,
    discount_minor,
    refund_share_minor,
)
from flashpay.promotions.benefits import draw_minor, percent_of

from .builders import DRAW_KEY


def off(benefit: Benefit, amount_minor: int, ref: str = "pay-1", campaign_id: int = 1) -> int:
    return discount_minor(
        benefit, amount_minor, draw_key=DRAW_KEY, campaign_id=campaign_id, payment_ref=ref
    )


@pytest.mark.parametrize(
    ("benefit", "amount_minor", "expected"),
    [
        pytest.param(AmountOff(1000, 5000), 5000, 1000, id="amount-off-at-threshold"),
        pytest.param(AmountOff(1000, 5000), 4999, 0, id="amount-off-below-threshold"),
        pytest.param(AmountOff(1000), 1000, 999, id="amount-off-leaves-one-fen"),
        pytest.param(PercentOff(1000), 12345, 1234, id="percent-10-of-123.45"),
        pytest.param(PercentOff(1000, cap_minor=500), 12345, 500, id="percent-capped"),
        pytest.param(PercentOff(10_000), 800, 799, id="percent-100-leaves-one-fen"),
        pytest.param(FixedPrice(100), 400, 300, id="fixed-price-1-yuan-ride"),
        pytest.param(FixedPrice(0), 400, 400, id="fixed-price-free-ride-pays-zero"),
        pytest.param(FixedPrice(100), 100, 0, id="fixed-price-not-above-price"),
    ],
)
def test_each_benefit_kind(benefit: Benefit, amount_minor: int, expected: int) -> None:
    assert off(benefit, amount_minor) == expected


@pytest.mark.parametrize(
    ("amount_minor", "rate_bps", "expected"),
    [
        pytest.param(5, 1000, 0, id="0.5-fen-exactly-half-rounds-down"),
        pytest.param(15, 1000, 1, id="1.5-fen-half-rounds-down"),
        pytest.param(16, 1000, 2, id="1.6-fen-above-half-rounds-up"),
        pytest.param(14, 1000, 1, id="1.4-fen-rounds-down"),
        pytest.param(12345, 250, 309, id="308.625-rounds-up"),
        pytest.param(100, 5, 0, id="0.05-fen"),
    ],
)
def test_percentages_round_half_down_to_the_fen(
    amount_minor: int, rate_bps: int, expected: int
) -> None:
    assert percent_of(amount_minor, rate_bps) == expected


def test_the_random_draw_is_reproducible_and_depends_on_payment_and_campaign() -> None:
    benefit = RandomOff(100, 500)
    first = off(benefit, 10_000, "pay-7", 3)
    assert off(benefit, 10_000, "pay-7", 3) == first
    draws = {off(benefit, 10_000, f"pay-{n}", 3) for n in range(200)}
    assert len(draws) > 100  # 401 possible values: different payments draw differently
    assert {off(benefit, 10_000, "pay-7", c) for c in range(1, 50)} != {first}
    assert min(draws) >= 100
    assert max(draws) <= 500


def test_the_draw_recipe_is_hmac_sha256_as_documented() -> None:
    import hashlib
    import hmac

    message = b"flashpay/promo-draw/v1\x00" + (5).to_bytes(8, "big") + b"order-99"
    n = int.from_bytes(hmac.new(DRAW_KEY, message, hashlib.sha256).digest()[:16], "big")
    drawn = draw_minor(
        draw_key=DRAW_KEY, campaign_id=5, payment_ref="order-99", low_minor=100, high_minor=500
    )
    assert drawn == 100 + n % 401


benefits = st.one_of(
    st.builds(AmountOff, st.integers(1, 100_000), st.integers(0, 100_000)),
    st.builds(PercentOff, st.integers(1, 10_000), st.one_of(st.none(), st.integers(1, 100_000))),
    st.integers(1, 50_000).flatmap(
        lambda low: st.builds(RandomOff, st.just(low), st.integers(low, 100_000))
    ),
    st.builds(FixedPrice, st.integers(0, 100_000)),
)


@given(benefit=benefits, amount_minor=st.integers(1, 10_000_000), ref=st.text(max_size=20))
def test_a_discount_never_exceeds_the_amount_and_leaves_a_fen(
    benefit: Benefit, amount_minor: int, ref: str
) -> None:
    discount = off(benefit, amount_minor, ref)
    assert 0 <= discount <= amount_minor
    if isinstance(benefit, FixedPrice):
        assert discount == 0 or amount_minor - discount == benefit.price_minor
    else:
        assert discount == 0 or amount_minor - discount >= 1


@given(
    low=st.integers(1, 10_000),
    span=st.integers(0, 10_000),
    ref=st.text(max_size=30),
    campaign_id=st.integers(1, 2**40),
)
def test_a_draw_is_within_its_bounds_and_reproducible(
    low: int, span: int, ref: str, campaign_id: int
) -> None:
    args = {"draw_key": DRAW_KEY, "campaign_id": campaign_id, "payment_ref": ref}
    drawn = draw_minor(low_minor=low, high_minor=low + span, **args)  # type: ignore[arg-type]
    assert low <= drawn <= low + span
    assert drawn == draw_minor(low_minor=low, high_minor=low + span, **args)  # type: ignore[arg-type]


@given(
    discount=st.integers(0, 100_000),
    data=st.data(),
)
def test_partial_refunds_return_exactly_the_discount(discount: int, data: st.DataObject) -> None:
    amount = data.draw(st.integers(max(discount, 1), 1_000_000))
    cuts = sorted(data.draw(st.sets(st.integers(1, amount), min_size=1, max_size=12)) | {amount})
    parts = [after - before for before, after in zip([0, *cuts], cuts, strict=False)]
    before, shares = 0, []
    for part in parts:
        share = refund_share_minor(
            discount_minor=discount,
            amount_minor=amount,
            refunded_before_minor=before,
            refund_minor=part,
        )
        assert 0 <= share <= discount
        shares.append(share)
        before += part
    assert sum(shares) == discount


@pytest.mark.parametrize(
    ("benefit", "zh", "en"),
    [
        (AmountOff(1000, 5000), "满50减10元", "¥10 off ¥50 or more"),
        (PercentOff(1250, 500), "立减12.5%，最高减5元", "12.5% off, at most ¥5"),
        (RandomOff(100, 500), "随机立减1–5元", "a random ¥1–¥5 off"),
        (FixedPrice(100), "1元特惠", "pay only ¥1"),
        (AmountOff(150), "立减1.5元", "¥1.5 off"),
    ],
)
def test_descriptions_in_chinese_and_english(benefit: Benefit, zh: str, en: str) -> None:
    assert describe(benefit) == (zh, en)
