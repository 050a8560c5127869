"""The discount inquiry: what the app shows a user before paying, and why a campaign does not apply.

``discounts_for`` lists the campaigns active now (for a scene, when given): for each, its benefit
in Chinese and English, the budget left, the user's uses left today and in the campaign, the
user's cards it applies to — and when it applies to none, the first reason why not (card not of
that bank, wrong scene, outside the time window, budget spent, user cap reached …), checked by
the same ``eligibility`` functions ``choose`` uses, so the inquiry and the payment cannot
disagree about a rule.

With ``campaign_ids`` the inquiry checks exactly those campaigns, in whatever state: "why does
the campaign I saw advertised not apply here?" — wrong scene, not running yet, paused, ended.
Without, it lists the campaigns the index (``flashpay.promotions.index``) admits for the scene,
merchant and city: at a thousand campaigns it reads only the ones that can apply here.

``quote`` is the answer for one prospective payment (a scanned code and an amount): exactly
``choose`` over the same campaigns and usage, so with the same ``payment_ref`` and nothing
changed in between, the payment applies what the quote said. ``quote_cards`` is the quote for
each of the user's cards, with what is left of each applied campaign.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

import sqlalchemy as sa

from flashpay.promotions.benefits import (
    Benefit,
    RandomOff,
    describe,
    discount_minor,
    smallest_discount_minor,
)
from flashpay.promotions.campaigns import Campaign, CardKind, Funder, PaymentMode
from flashpay.promotions.choose import Choice, choose
from flashpay.promotions.context import Facts, PaymentContext, UserKeys, china_day
from flashpay.promotions.eligibility import cap_refusal, refusal
from flashpay.promotions.errors import PromotionRefusal
from flashpay.promotions.storage import active_campaigns, campaigns_by_id, usage_for
from flashpay.promotions.usage import Usage

CARDS_MAX = 15  # a wallet binds at most 15 cards
CAMPAIGN_IDS_MAX = 50  # campaigns asked about by id in one inquiry


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
    # each of the user's cards it does not apply to, with that card's first reason
    card_refusals: tuple[tuple[str, PromotionRefusal], ...] = ()


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
    campaign_ids: Collection[int] = (),
) -> list[Offer]:
    """Every campaign running at ``at_ns`` that can apply to ``scene`` and the inquiry's merchant
    and city, and whether and how it applies — or, with ``campaign_ids``, exactly those.

    Exhausted campaigns are listed too (``why_not`` = ``BUDGET_EXHAUSTED``): "it ran out" is
    what a user who saw the campaign advertised needs to hear.
    """
    if campaign_ids:
        campaigns = campaigns_by_id(connection, campaign_ids=list(campaign_ids)[:CAMPAIGN_IDS_MAX])
    else:
        campaigns = active_campaigns(
            connection,
            at_ns=at_ns,
            scene=scene,
            include_exhausted=True,
            merchant_id=inquiry.merchant_id,
            city=inquiry.city,
        )
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
    # the facts per card, built once (not per campaign and card: a thousand campaigns)
    per_card = [
        (
            card,
            facts
            if card is None
            else replace(facts, issuer_id=card.issuer_id, bin=card.bin, card_kind=card.kind),
        )
        for card in cards or (None,)
    ]
    offers = []
    for campaign in campaigns:
        known = _known_discount(campaign.spec.benefit, inquiry.amount_minor)
        applying: list[str] = []
        reasons: list[PromotionRefusal] = []
        refused: list[tuple[str, PromotionRefusal]] = []
        for card, card_facts in per_card:
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
                if card is not None:
                    refused.append((card.fingerprint, reason))
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
                card_refusals=tuple(refused),
            )
        )
    return offers


def _campaigns_for(connection: sa.Connection, context: PaymentContext) -> list[Campaign]:
    """The campaigns that can apply to the payment, by the index: the ones it leaves out would
    be refused for the scene, the merchant or the city, so ``choose`` applies the same."""
    return active_campaigns(
        connection,
        at_ns=context.at_ns,
        scene=context.scene,
        merchant_id=context.merchant_id,
        city=context.city,
    )


def _usage(connection: sa.Connection, context: PaymentContext, ids: list[int]) -> Usage:
    card = context.user.card_fingerprint
    return usage_for(
        connection,
        campaign_ids=ids,
        user_keys=context.user.keys(),
        card_fingerprints=[] if card is None else [card],
        day=context.day,
        at_ns=context.at_ns,
    )


def quote(connection: sa.Connection, *, context: PaymentContext, draw_key: bytes) -> Choice:
    """What ``context`` would get if paid now: ``choose`` over the same campaigns and usage."""
    campaigns = _campaigns_for(connection, context)
    usage = _usage(connection, context, [c.id for c in campaigns])
    return choose(context, campaigns, usage, draw_key=draw_key)


@dataclass(frozen=True, slots=True)
class Left:
    """What is left of one applied campaign before this payment: budget and the user's uses."""

    campaign_id: int
    money_left_minor: int | None
    uses_left: int | None
    user_uses_left_today: int | None
    user_uses_left_total: int | None


@dataclass(frozen=True, slots=True)
class CardQuote:
    choice: Choice
    left: tuple[Left, ...]  # one per applied campaign, in the choice's order


def quote_cards(
    connection: sa.Connection, *, contexts: Sequence[PaymentContext], draw_key: bytes
) -> list[CardQuote]:
    """``quote`` for each context (one per card of the user, same merchant and amount), with
    what is left of each applied campaign. The campaigns are read once (they do not depend on
    the card); the usage per card, as the payment with that card would read it."""
    if not contexts:
        return []
    campaigns = _campaigns_for(connection, contexts[0])
    by_id = {c.id: c for c in campaigns}
    quotes = []
    for context in contexts[:CARDS_MAX]:
        usage = _usage(connection, context, list(by_id))
        choice = choose(context, campaigns, usage, draw_key=draw_key)
        keys = context.user.keys()
        left = []
        for applied in choice.applied:
            budget, caps = usage.budget(by_id[applied.campaign_id]), applied.caps
            left.append(
                Left(
                    campaign_id=applied.campaign_id,
                    money_left_minor=budget.money_left_minor,
                    uses_left=budget.uses_left,
                    user_uses_left_today=_left(
                        caps.user_per_day, usage.most_today(applied.campaign_id, keys)
                    ),
                    user_uses_left_total=_left(
                        caps.user_per_campaign, usage.most_total(applied.campaign_id, keys)
                    ),
                )
            )
        quotes.append(CardQuote(choice=choice, left=tuple(left)))
    return quotes
