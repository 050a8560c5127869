"""Campaigns and payments for the promotions tests, built from defaults with named overrides."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from flashpay.clock import NS_PER_SECOND
from flashpay.promotions import (
    AmountOff,
    Benefit,
    Budget,
    Campaign,
    CampaignSpec,
    CampaignState,
    CardKind,
    Funder,
    FunderKind,
    PaymentContext,
    PaymentMode,
    UserKeys,
)

# 2026-12-01 12:00 China time (04:00 UTC): inside every default period, at lunch.
NOON_NS = int(datetime(2026, 12, 1, 4, 0, tzinfo=UTC).timestamp()) * NS_PER_SECOND
DAY_NS = 86_400 * NS_PER_SECOND
DRAW_KEY = b"promotions-test-draw-key-0123456"
BOC = 3  # the issuer id the tests fund from
NETWORK = 1
ACQUIRER = 7
MERCHANT = 42


def spec(
    benefit: Benefit | None = None,
    *,
    funder: Funder | None = None,
    budget: Budget | None = None,
    **fields: Any,
) -> CampaignSpec:
    return CampaignSpec(
        name=fields.pop("name", "test campaign"),
        funder=funder or Funder(FunderKind.NETWORK, NETWORK),
        starts_at_ns=fields.pop("starts_at_ns", NOON_NS - 10 * DAY_NS),
        ends_at_ns=fields.pop("ends_at_ns", NOON_NS + 10 * DAY_NS),
        benefit=benefit or AmountOff(off_minor=1000, threshold_minor=5000),
        budget=budget or Budget(money_minor=100_000, uses=100),
        **fields,
    )


def campaign(
    campaign_id: int = 1,
    benefit: Benefit | None = None,
    *,
    state: CampaignState = CampaignState.ACTIVE,
    **fields: Any,
) -> Campaign:
    return Campaign(id=campaign_id, state=state, spec=spec(benefit, **fields))


def user(n: int = 1) -> UserKeys:
    return UserKeys(
        phone=f"1380000{n:04d}",
        id_fingerprint=f"{n:064x}",
        device_id=f"device-{n}",
        card_fingerprint=f"{n + 10_000:064x}",
    )


def payment(ref: str = "pay-1", amount_minor: int = 6000, **fields: Any) -> PaymentContext:
    context = PaymentContext(
        payment_ref=ref,
        amount_minor=amount_minor,
        merchant_id=MERCHANT,
        scene="supermarket",
        mcc="5411",
        city="Beijing",
        acquirer_id=ACQUIRER,
        issuer_id=BOC,
        bin="62166100",
        card_kind=CardKind.DEBIT,
        mode=PaymentMode.SCAN,
        user=user(),
        at_ns=NOON_NS,
    )
    return replace(context, **fields)
