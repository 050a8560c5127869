"""The discount inquiry: what the app shows a user before paying, and why a campaign does not apply.

``discounts_for`` lists the campaigns active now (for a scene, when given): for each, its benefit
in Chinese and English, the budget left, the user's uses left today and in the campaign, the
user's cards it applies to — and when it applies to none, the first reason why not (card not of
that bank, wrong scene, outside the time window, budget spent, user cap reached …), checked by
the same ``eligibility`` functions ``choose`` uses, so the inquiry and the payment cannot
disagree about a rule.

``quote`` is the answer for one prospective payment (a scanned code and an amount): exactly
``choose`` over the same campaigns and usage, so with the same ``payment_ref`` and nothing
changed in between, the payment applies what the quote said.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import sqlalchemy as sa

from flashpay.promotions.benefits import (
    Benefit,
    RandomOff,
    describe,
    discount_minor,
    smallest_discount_minor,
)
from flashpay.promotions.campaigns import CardKind, Funder, PaymentMode
from flashpay.promotions.choose import Choice, choose
from flashpay.promotions.context import Facts, PaymentContext, UserKeys, china_day
from flashpay.promotions.eligibility import cap_refusal, refusal
from flashpay.promotions.errors import PromotionRefusal
from flashpay.promotions.storage import active_campaigns, usage_for

CARDS_MAX = 15  # a wallet binds at most 15 cards


@dataclass(frozen=True, slots=True)
class InquiryCard:
    """One of the user's bound cards, as the inquiry needs it (no card number)."""

    fingerprint: str
    issuer_id: int
    bin: str
    kind: CardKind


@dataclass(frozen=True, slots=True)
class InquiryContext:
    """The user and what is known about where they are; unknown facts are not checked."""

    user: UserKeys  # phone, ID fingerprint, device (the card key comes from each card)
    cards: tuple[InquiryCard, ...]
    city: str | None = None
    merchant_id: int | None = None
    mcc: str | None = None
    acquirer_id: int | None = None
    mode: PaymentMode | None = None
    amount_minor: int | None = None
    first_payment_ever: bool | None = None
    first_in_scene: bool | None = None


@dataclass(frozen=True, slots=True)
class Offer:
    campaign_id: int
    name: str
    funder: Funder
    description_zh: str
    description_en: str
    ends_at_ns: int
    money_left_minor: int | None
    uses_left: int | None
    user_uses_left_today: int | None
    user_uses_left_total: int | None
    card_fingerprints: tuple[str, ...]  # the user's cards it applies to
    # None: it applies (to the cards above, or to any card when the inquiry named none);
    # otherwise the first card's reason when it applies to none of them
    why_not: PromotionRefusal | None
    discount_minor: int | None  # on ``amount_minor``, when known and not a random draw


def _left(cap: int | None, used: int) -> int | None:
    return None if cap is None else max(0, cap - used)


def _known_discount(benefit: Benefit, amount_minor: int | None) -> int | None:
    """The discount on a known amount; a random draw is known only with a payment (``quote``)."""
    if amount_minor is None or isinstance(benefit, RandomOff):
        return None
    return discount_minor(benefit, amount_minor, draw_key=b"", campaign_id=0, payment_ref="")


def discounts_for(
    connection: sa.Connection,
    *,
    inquiry: InquiryContext,
    at_ns: int,
    scene: str | None = None,
) -> list[Offer]:
    """Every campaign running at ``at_ns`` (for ``scene``), and whether and how it applies.

    Exhausted campaigns are listed too (``why_not`` = ``BUDGET_EXHAUSTED``): "it ran out" is
    what a user who saw the campaign advertised needs to hear.
    """
    campaigns = active_campaigns(connection, at_ns=at_ns, scene=scene, include_exhausted=True)
    cards = inquiry.cards[:CARDS_MAX]
    base_keys = inquiry.user.keys()
    all_keys = tuple(sorted({*base_keys, *(f"card:{card.fingerprint}" for card in cards)}))
    usage = usage_for(
        connection,
        campaign_ids=[c.id for c in campaigns],
        user_keys=all_keys,
        card_fingerprints=[card.fingerprint for card in cards],
        day=china_day(at_ns),
        at_ns=at_ns,
    )
    facts = Facts(
        at_ns=at_ns,
        amount_minor=inquiry.amount_minor,
        merchant_id=inquiry.merchant_id,
        scene=scene,
        mcc=inquiry.mcc,
        city=inquiry.city,
        acquirer_id=inquiry.acquirer_id,
        mode=inquiry.mode,
        first_payment_ever=inquiry.first_payment_ever,
        first_in_scene=inquiry.first_in_scene,
    )
    offers = []
    for campaign in campaigns:
        known = _known_discount(campaign.spec.benefit, inquiry.amount_minor)
        applying: list[str] = []
        reasons: list[PromotionRefusal] = []
        for card in cards or (None,):
            card_facts = (
                facts
                if card is None
                else replace(facts, issuer_id=card.issuer_id, bin=card.bin, card_kind=card.kind)
            )
            reason = refusal(campaign, card_facts)
            if reason is None:
                reason = cap_refusal(
                    campaign,
                    usage,
                    user_keys=all_keys,
                    card_fingerprint=None if card is None else card.fingerprint,
                    discount_minor=known or smallest_discount_minor(campaign.spec.benefit),
                )
            if reason is None and card is not None:
                applying.append(card.fingerprint)
            elif reason is not None:
                reasons.append(reason)
        budget, caps = usage.budget(campaign), campaign.spec.caps
        zh, en = describe(campaign.spec.benefit)
        offers.append(
            Offer(
                campaign_id=campaign.id,
                name=campaign.spec.name,
                funder=campaign.spec.funder,
                description_zh=zh,
                description_en=en,
                ends_at_ns=campaign.spec.ends_at_ns,
                money_left_minor=budget.money_left_minor,
                uses_left=budget.uses_left,
                user_uses_left_today=_left(
                    caps.user_per_day, usage.most_today(campaign.id, all_keys)
                ),
                user_uses_left_total=_left(
                    caps.user_per_campaign, usage.most_total(campaign.id, all_keys)
                ),
                card_fingerprints=tuple(applying),
                why_not=None if applying or not reasons else reasons[0],
                discount_minor=known,
            )
        )
    return offers


def quote(connection: sa.Connection, *, context: PaymentContext, draw_key: bytes) -> Choice:
    """What ``context`` would get if paid now: ``choose`` over the same campaigns and usage."""
    campaigns = active_campaigns(connection, at_ns=context.at_ns, scene=context.scene)
    card = context.user.card_fingerprint
    usage = usage_for(
        connection,
        campaign_ids=[c.id for c in campaigns],
        user_keys=context.user.keys(),
        card_fingerprints=[] if card is None else [card],
        day=context.day,
        at_ns=context.at_ns,
    )
    return choose(context, campaigns, usage, draw_key=draw_key)
