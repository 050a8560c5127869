"""``choose``: which benefits one payment gets — one deterministic rule, pure.

**The rule.**

1. A campaign is a *candidate* when ``eligibility.refusal`` finds nothing, its benefit is worth
   at least 1 fen on this amount (``benefits.discount_minor``, computed on the *original* amount),
   and ``eligibility.cap_refusal`` finds the budget and caps can pay it. Every other campaign is
   listed in ``Choice.skipped`` with its first refusal (what the inquiry shows as "why not").
2. Candidates are ranked by **larger discount first, then higher priority, then lower campaign
   id** — a total order, so the same inputs always give the same choice.
3. Two options are built: the *best alone* (the first candidate, exclusive or not), and the
   *stack* — walking the ranking, every stackable candidate whose funder is not yet in the stack
   (at most one benefit per funder), each cut so that the stack's total leaves at least 1 fen to
   pay. A fixed price is never stackable (``parse_campaign`` refuses it), so a stack never pays 0.
4. The stack wins when its total is strictly larger than the best alone; otherwise the best
   alone (so on a tie, the simpler outcome).

The result is a ``Choice``: what to take (``applied``, in ranking order), what the payer pays,
and everything ``storage.take`` needs to take it atomically. It can be wrong about a budget or a
cap under concurrency (``Usage`` is a snapshot); ``take`` decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from flashpay.errors import invariant
from flashpay.promotions.benefits import PAID_MIN_MINOR, FixedPrice, discount_minor
from flashpay.promotions.campaigns import Campaign, Caps, Funder, Stacking
from flashpay.promotions.context import PaymentContext
from flashpay.promotions.eligibility import cap_refusal, refusal
from flashpay.promotions.errors import PromotionRefusal
from flashpay.promotions.usage import Usage

CANDIDATES_MAX = 1_000  # campaigns considered for one payment; the caller pre-filters by scene


@dataclass(frozen=True, slots=True)
class Applied:
    """One benefit given to one payment: what ``take`` takes from the campaign and the caps."""

    campaign_id: int
    funder: Funder
    discount_minor: int
    priority: int
    caps: Caps
    coupon_id: int | None = None


@dataclass(frozen=True, slots=True)
class Choice:
    """The benefits for one payment, and the keys their caps are counted on."""

    payment_ref: str
    amount_minor: int
    at_ns: int
    day: str
    scene: str  # kept on the redemption for the campaign report
    issuer_id: int
    user_keys: tuple[str, ...]
    card_fingerprint: str | None
    applied: tuple[Applied, ...]
    skipped: tuple[tuple[int, PromotionRefusal], ...] = ()

    @property
    def discount_minor(self) -> int:
        return sum(item.discount_minor for item in self.applied)

    @property
    def paid_minor(self) -> int:
        return self.amount_minor - self.discount_minor


def _rank(item: Applied) -> tuple[int, int, int]:
    return (-item.discount_minor, -item.priority, item.campaign_id)


def _stack(ranked: list[Applied], stackable: set[int], amount_minor: int) -> list[Applied]:
    room = amount_minor - PAID_MIN_MINOR
    funders: set[Funder] = set()
    stack: list[Applied] = []
    for item in ranked:
        if item.campaign_id not in stackable or item.funder in funders or room <= 0:
            continue
        cut = min(item.discount_minor, room)
        stack.append(replace(item, discount_minor=cut))
        funders.add(item.funder)
        room -= cut
    return stack


def choose(
    context: PaymentContext,
    campaigns: Iterable[Campaign],
    usage: Usage,
    *,
    draw_key: bytes,
) -> Choice:
    """The benefits ``context`` gets from ``campaigns`` by the rule in the module docstring."""
    facts, keys = context.facts(), context.user.keys()
    candidates: list[Applied] = []
    stackable: set[int] = set()
    skipped: list[tuple[int, PromotionRefusal]] = []
    for count, campaign in enumerate(campaigns, start=1):
        invariant(count <= CANDIDATES_MAX, f"more than {CANDIDATES_MAX} campaigns for a payment")
        reason = refusal(campaign, facts)
        discount = 0
        if reason is None:
            discount = discount_minor(
                campaign.spec.benefit,
                context.amount_minor,
                draw_key=draw_key,
                campaign_id=campaign.id,
                payment_ref=context.payment_ref,
            )
            reason = PromotionRefusal.NO_DISCOUNT if discount <= 0 else None
        if reason is None:
            reason = cap_refusal(
                campaign,
                usage,
                user_keys=keys,
                card_fingerprint=context.user.card_fingerprint,
                discount_minor=discount,
            )
        if reason is not None:
            skipped.append((campaign.id, reason))
            continue
        candidates.append(
            Applied(
                campaign_id=campaign.id,
                funder=campaign.spec.funder,
                discount_minor=discount,
                priority=campaign.spec.priority,
                caps=campaign.spec.caps,
                coupon_id=usage.coupons.get(campaign.id),
            )
        )
        if campaign.spec.stacking is Stacking.STACKABLE and not isinstance(
            campaign.spec.benefit, FixedPrice
        ):
            stackable.add(campaign.id)
    ranked = sorted(candidates, key=_rank)
    applied: list[Applied] = ranked[:1]
    stack = _stack(ranked, stackable, context.amount_minor)
    if sum(i.discount_minor for i in stack) > sum(i.discount_minor for i in applied):
        applied = stack
    choice = Choice(
        payment_ref=context.payment_ref,
        amount_minor=context.amount_minor,
        at_ns=context.at_ns,
        day=context.day,
        scene=context.scene,
        issuer_id=context.issuer_id,
        user_keys=keys,
        card_fingerprint=context.user.card_fingerprint,
        applied=tuple(applied),
        skipped=tuple(sorted(skipped)),
    )
    invariant(0 <= choice.discount_minor <= context.amount_minor, "discount beyond the amount")
    invariant(
        choice.paid_minor >= PAID_MIN_MINOR or len(applied) == 1,
        "a stack of discounts left nothing to pay",
    )
    return choice
