"""The promotion stage: the benefits of a QR payment, chosen and taken in the transaction that
records it (decision 0019; the rule and the budgets: ``flashpay.promotions``, decision 0018).

Once per batch, after the claims (orders, codes, limits) and before the ledger, in the
recording transaction (``stages.run_adjustments``):

1. the campaigns running now — one indexed SELECT; none running: nothing else happens;
2. per payment whose merchant's scene some campaign allows: the payment as a
   ``PaymentContext`` (keyed as ``flashpay.promotions_api`` keys the quote: the user by
   ``phone:<wallet phone>`` and ``id:<the paying card's holder fingerprint, hex>``, the card by
   its card id, the random draw by the request's Idempotency-Key, else ``payment:<id>``), its
   usage snapshot (``usage_for``), and ``choose`` — so a quote with the same key equals what
   the payment gets;
3. one ``take`` for the whole batch (locks in campaign-id order, so batches and single
   payments never deadlock), each choice under the ref ``payment:<id>`` (unique per payment,
   whatever key the app sent). A refused take (the budget or a cap went to another payment
   since the snapshot) means full price: no second round, which would lock out of order.

What a payment took is given back by ``release`` (declined after this stage: the ledger
refused the chain, or recovery declined the record) and ``refunded`` (refunded in full) —
``give_back`` on the same ref, once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import sqlalchemy as sa

from flashpay.errors import invariant
from flashpay.payments.history import paid_before
from flashpay.payments.plans import Adjustment, Plan, Share
from flashpay.platform import Platform
from flashpay.promotions import (
    Campaign,
    CardKind,
    Choice,
    NewUser,
    PaymentContext,
    PaymentMode,
    UserKeys,
    active_campaigns,
    choose,
    give_back,
    take,
    usage_for,
)
from flashpay.promotions.eligibility import refusal
from flashpay.promotions.storage import REFS_MAX

STAGE_NAME = "promotions"
DRAW_KEY_PURPOSE = "promotion_draw"  # the same derivation as flashpay.promotions_api.draw_key


def draw_key(platform: Platform) -> bytes:
    """The network's key for random discounts (``promotions_api.draw_key``'s derivation)."""
    return platform.keys.fingerprint(DRAW_KEY_PURPOSE, "v1")


def payment_ref(record_id: int) -> str:
    """The ref a payment's redemptions are recorded under (unique per payment)."""
    return f"payment:{record_id}"


def user_keys(phone: str | None, holder_fingerprint: bytes, card_id: int) -> UserKeys:
    """How a payer is counted against caps (as the quote counts them)."""
    return UserKeys(
        phone=phone, id_fingerprint=holder_fingerprint.hex(), card_fingerprint=str(card_id)
    )


def _context(plan: Plan, first_ever: bool, first_in_scene: bool) -> PaymentContext:
    card, merchant = plan.card, plan.merchant
    invariant(card is not None and merchant is not None, "only QR plans are priced")
    assert card is not None
    assert merchant is not None
    return PaymentContext(
        payment_ref=plan.ref or payment_ref(plan.record_id),
        amount_minor=plan.amount,
        merchant_id=merchant.id,
        scene=merchant.scene.value,
        mcc=merchant.mcc,
        city=merchant.city,
        acquirer_id=merchant.acquirer_id,
        issuer_id=card.issuer_id,
        bin=card.first6,
        card_kind=CardKind(card.card_type.value),
        mode=PaymentMode.CODE if plan.kind == "cpm" else PaymentMode.SCAN,
        user=user_keys(plan.phone, card.holder_id_fingerprint, card.id),
        at_ns=plan.at_ns,
        first_payment_ever=first_ever,
        first_in_scene=first_in_scene,
    )


def _for_scene(campaigns: Sequence[Campaign], scene: str) -> list[Campaign]:
    return [
        c for c in campaigns if not c.spec.eligibility.scenes or scene in c.spec.eligibility.scenes
    ]


def _shares(choice: Choice, names: Mapping[int, str]) -> tuple[Share, ...]:
    return tuple(
        Share(a.campaign_id, a.funder.kind.value, a.funder.id, a.discount_minor,
              names.get(a.campaign_id, ""))
        for a in choice.applied
    )  # fmt: skip


class PromotionStage:
    """The promotion stage (see the module docstring); stateless, one instance in ``STAGES``."""

    name = STAGE_NAME

    def review(self, connection: sa.Connection, plans: Sequence[Plan]) -> Mapping[int, str]:
        """Promotions never decline a payment: a discount that cannot be had is full price."""
        del connection, plans
        return {}

    def adjust(
        self, platform: Platform, connection: sa.Connection, plans: Sequence[Plan]
    ) -> Mapping[int, Adjustment]:
        if not plans:
            return {}
        at_ns = plans[0].at_ns
        running = active_campaigns(connection, at_ns=at_ns)
        if not running:
            return {}
        wanted = [
            (plan, found)
            for plan in plans
            if plan.merchant is not None
            and (found := _for_scene(running, plan.merchant.scene.value))
        ]
        if not wanted:
            return {}
        new_user = {c.spec.eligibility.new_user for _, found in wanted for c in found}
        paid: set[int] = set()
        seen: dict[int, set[str]] = {}
        if new_user - {None}:
            paid, seen = paid_before(
                platform, connection, [p.user_id for p, _ in wanted if p.user_id is not None],
                NewUser.FIRST_IN_SCENE in new_user,
            )  # fmt: skip
        key = draw_key(platform)
        names = {c.id: c.spec.name for c in running}
        choices: list[tuple[int, Choice]] = []
        for plan, found in wanted:
            scene = plan.merchant.scene.value if plan.merchant is not None else ""
            user = plan.user_id
            context = _context(
                plan,
                first_ever=user is not None and user not in paid,
                first_in_scene=user is not None and scene not in seen.get(user, set()),
            )
            if user is not None:  # a later payment of this batch is no longer the first
                paid.add(user)
                seen.setdefault(user, set()).add(scene)
            # The pure checks first (bank, merchant, window, new user…): a payment no campaign
            # can apply to reads no usage (``choose`` runs them again; they are cheap).
            facts = context.facts()
            found = [c for c in found if refusal(c, facts) is None]
            if not found:
                continue
            usage = usage_for(
                connection,
                campaign_ids=[c.id for c in found],
                user_keys=context.user.keys(),
                card_fingerprints=[str(context.user.card_fingerprint)],
                day=context.day,
                at_ns=at_ns,
            )
            choice = choose(context, found, usage, draw_key=key)
            if choice.applied:
                choices.append(
                    (plan.record_id, replace(choice, payment_ref=payment_ref(plan.record_id)))
                )
        if not choices:
            return {}
        taken = take(connection, [c for _, c in choices])
        return {
            record_id: Adjustment(STAGE_NAME, _shares(choice, names))
            for (record_id, choice), outcome in zip(choices, taken, strict=True)
            if outcome.taken and choice.discount_minor > 0
        }

    def release(self, connection: sa.Connection, record_ids: Sequence[int], now_ns: int) -> None:
        _give_back(connection, record_ids, now_ns)

    def refunded(self, connection: sa.Connection, record_ids: Sequence[int], now_ns: int) -> None:
        _give_back(connection, record_ids, now_ns)


def _give_back(connection: sa.Connection, record_ids: Sequence[int], now_ns: int) -> None:
    """Everything the payments took, back (a payment that took nothing gives nothing)."""
    refs = [payment_ref(i) for i in sorted(set(record_ids))]
    for start in range(0, len(refs), REFS_MAX):
        give_back(connection, payment_refs=refs[start : start + REFS_MAX], now_ns=now_ns)


PROMOTIONS = PromotionStage()
