"""Request and response shapes of ``/v1/promotions`` (docs/reference/promotions.md, "HTTP API").

A campaign goes in and comes out as its *definition*: the same fields as the TOML file of
``flashpay promo create`` (``flashpay.promotions.definition``), amounts in integer fen
(``off_minor``) as the definition has them. What the service computes — budget spent and left,
a report, an offer, a quote — follows the API's money convention: decimal text (``"12.34"``)
beside the integer minor units.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from flashpay.api.schemas import Strict, money_text
from flashpay.clock import to_datetime
from flashpay.promotions.campaigns import Campaign
from flashpay.promotions.choose import Choice
from flashpay.promotions.coupons import PUSH_USERS_MAX, Coupon
from flashpay.promotions.definition import to_definition
from flashpay.promotions.errors import PromotionRefusal
from flashpay.promotions.inquiry import CardQuote, Left, Offer
from flashpay.promotions.report import CampaignReport, ReportLine
from flashpay.promotions.usage import BudgetState

TOP_UP_USES_MAX = 10_000_000


def _text(amount_minor: int | None) -> str | None:
    return None if amount_minor is None else money_text(amount_minor)


class FunderOut(BaseModel):
    kind: str
    id: int


class BudgetOut(BaseModel):
    """The budget after top-ups and what is spent of it; ``null`` where it sets no limit."""

    money: str | None
    money_minor: int | None
    spent: str
    spent_minor: int
    money_left: str | None
    money_left_minor: int | None
    uses_max: int | None
    uses: int
    uses_left: int | None

    @classmethod
    def of(cls, b: BudgetState) -> BudgetOut:
        return cls(money=_text(b.money_minor), money_minor=b.money_minor,
                   spent=money_text(b.spent_minor), spent_minor=b.spent_minor,
                   money_left=_text(b.money_left_minor), money_left_minor=b.money_left_minor,
                   uses_max=b.uses_max, uses=b.uses, uses_left=b.uses_left)  # fmt: skip


class CampaignOut(BaseModel):
    id: int
    state: str
    funder: FunderOut
    definition: dict[str, Any] = Field(description="The checked definition, as created.")
    budget: BudgetOut

    @classmethod
    def of(cls, campaign: Campaign, budget: BudgetState) -> CampaignOut:
        funder = campaign.spec.funder
        return cls(id=campaign.id, state=campaign.state.value,
                   funder=FunderOut(kind=funder.kind.value, id=funder.id),
                   definition=to_definition(campaign.spec),
                   budget=BudgetOut.of(budget))  # fmt: skip


class TopUpIn(Strict):
    """Add to the budget: money (decimal text) and/or uses; a dimension the budget does not
    limit stays unlimited."""

    amount: str | None = Field(default=None, max_length=24)
    uses: int = Field(default=0, ge=0, le=TOP_UP_USES_MAX)


class ReportLineOut(BaseModel):
    key: str
    uses: int
    discount: str
    discount_minor: int
    volume: str
    volume_minor: int

    @classmethod
    def of(cls, line: ReportLine) -> ReportLineOut:
        return cls(key=line.key, uses=line.uses, discount=money_text(line.discount_minor),
                   discount_minor=line.discount_minor, volume=money_text(line.volume_minor),
                   volume_minor=line.volume_minor)  # fmt: skip


class ReportOut(BaseModel):
    campaign_id: int
    name: str
    state: str
    uses: int
    discount: str
    discount_minor: int
    volume: str
    volume_minor: int
    money_left: str | None
    money_left_minor: int | None
    uses_left: int | None
    by_day: list[ReportLineOut]
    by_scene: list[ReportLineOut]
    by_issuer: list[ReportLineOut]

    @classmethod
    def of(cls, r: CampaignReport) -> ReportOut:
        return cls(campaign_id=r.campaign_id, name=r.name, state=r.state, uses=r.uses,
                   discount=money_text(r.discount_minor), discount_minor=r.discount_minor,
                   volume=money_text(r.volume_minor), volume_minor=r.volume_minor,
                   money_left=_text(r.money_left_minor), money_left_minor=r.money_left_minor,
                   uses_left=r.uses_left, by_day=[ReportLineOut.of(x) for x in r.by_day],
                   by_scene=[ReportLineOut.of(x) for x in r.by_scene],
                   by_issuer=[ReportLineOut.of(x) for x in r.by_issuer])  # fmt: skip


class OfferOut(BaseModel):
    """One running campaign as the app shows it: ``why_not`` is ``null`` when it applies (to
    ``card_ids``), else the first reason it does not (a promotions refusal code)."""

    campaign_id: int
    name: str
    funder: FunderOut
    description_zh: str
    description_en: str
    ends_at: datetime
    money_left: str | None
    uses_left: int | None
    your_uses_left_today: int | None
    your_uses_left_total: int | None
    card_ids: list[int]
    why_not: str | None
    discount: str | None = Field(description="On the amount asked about; null for a random one.")
    discount_minor: int | None
    why_not_by_card: dict[str, str] = Field(
        default_factory=dict, description="wallet card id → why it does not apply to that card"
    )

    @classmethod
    def of(
        cls, offer: Offer, card_ids: list[int], id_of: Mapping[str, int] | None = None
    ) -> OfferOut:
        by_card = {str((id_of or {}).get(k, k)): r.value for k, r in offer.card_refusals}
        f = offer.funder
        return cls(campaign_id=offer.campaign_id, name=offer.name,
                   funder=FunderOut(kind=f.kind.value, id=f.id),
                   description_zh=offer.description_zh, description_en=offer.description_en,
                   ends_at=to_datetime(offer.ends_at_ns), money_left=_text(offer.money_left_minor),
                   uses_left=offer.uses_left, your_uses_left_today=offer.user_uses_left_today,
                   your_uses_left_total=offer.user_uses_left_total, card_ids=card_ids,
                   why_not=None if offer.why_not is None else offer.why_not.value,
                   discount=_text(offer.discount_minor),
                   discount_minor=offer.discount_minor, why_not_by_card=by_card)  # fmt: skip


class AppliedOut(BaseModel):
    campaign_id: int
    funder: FunderOut
    discount: str
    discount_minor: int


class QuoteOut(BaseModel):
    """What a payment of ``amount`` with ``card_id`` would get now (``payment_ref`` keys the
    random draws: pay with it as the Idempotency-Key and the payment draws the same)."""

    payment_ref: str
    card_id: int
    amount: str
    amount_minor: int
    discount: str
    discount_minor: int
    pay: str
    pay_minor: int
    applied: list[AppliedOut]
    skipped: dict[str, str] = Field(description="campaign id → why it does not apply")

    @classmethod
    def of(cls, choice: Choice, card_id: int) -> QuoteOut:
        off = sum(a.discount_minor for a in choice.applied)
        applied = [
            AppliedOut(campaign_id=a.campaign_id,
                       funder=FunderOut(kind=a.funder.kind.value, id=a.funder.id),
                       discount=money_text(a.discount_minor), discount_minor=a.discount_minor)
            for a in choice.applied
        ]  # fmt: skip
        return cls(payment_ref=choice.payment_ref, card_id=card_id,
                   amount=money_text(choice.amount_minor), amount_minor=choice.amount_minor,
                   discount=money_text(off), discount_minor=off,
                   pay=money_text(choice.amount_minor - off),
                   pay_minor=choice.amount_minor - off, applied=applied,
                   skipped={str(c): r.value for c, r in choice.skipped})  # fmt: skip


class CouponOut(BaseModel):
    id: int
    campaign_id: int
    campaign_name: str
    state: str
    expires_at: datetime
    description_zh: str
    description_en: str

    @classmethod
    def of(cls, c: Coupon) -> CouponOut:
        return cls(id=c.id, campaign_id=c.campaign_id, campaign_name=c.campaign_name,
                   state=c.state, expires_at=to_datetime(c.expires_at_ns),
                   description_zh=c.description_zh, description_en=c.description_en)  # fmt: skip


class LeftOut(BaseModel):
    """What is left of an applied campaign before this payment; ``null``: no such limit."""

    campaign_id: int
    money_left: str | None
    money_left_minor: int | None
    uses_left: int | None
    your_uses_left_today: int | None
    your_uses_left_total: int | None

    @classmethod
    def of(cls, left: Left) -> LeftOut:
        return cls(campaign_id=left.campaign_id, money_left=_text(left.money_left_minor),
                   money_left_minor=left.money_left_minor, uses_left=left.uses_left,
                   your_uses_left_today=left.user_uses_left_today,
                   your_uses_left_total=left.user_uses_left_total)  # fmt: skip


class CardQuoteOut(QuoteOut):
    left: list[LeftOut]

    @classmethod
    def of_card(cls, quoted: CardQuote, card_id: int) -> CardQuoteOut:
        base = QuoteOut.of(quoted.choice, card_id)
        return cls(**base.model_dump(), left=[LeftOut.of(x) for x in quoted.left])


class ScanQuoteOut(BaseModel):
    """A scanned merchant code quoted for each of the user's active cards."""

    merchant_id: int
    merchant_name: str
    scene: str
    dynamic: bool
    bill_number: str | None
    amount: str
    amount_minor: int
    payment_ref: str
    cards: list[CardQuoteOut]


class CouponPushIn(Strict):
    """The users to push a coupon to, by phone and/or wallet user id (at most
    ``PUSH_USERS_MAX`` in all)."""

    phones: list[str] = Field(default_factory=list, max_length=PUSH_USERS_MAX)
    user_ids: list[int] = Field(default_factory=list, max_length=PUSH_USERS_MAX)


class PushedOut(BaseModel):
    user: str = Field(description='As given: "phone:…" or "user:…".')
    outcome: str = Field(description='"issued", "held" (on a replay) or a refusal code.')
    coupon_id: int | None

    @classmethod
    def of(cls, user: str, outcome: PromotionRefusal | str, coupon_id: int | None) -> PushedOut:
        return cls(user=user, outcome=str(outcome), coupon_id=coupon_id)


class CouponPushOut(BaseModel):
    campaign_id: int
    issued: int
    users: list[PushedOut]
