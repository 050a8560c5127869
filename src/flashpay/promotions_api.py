"""``/v1/promotions`` for the app user: what applies to me, a quote, claiming coupons, my coupons.

The inquiry (``flashpay.promotions.inquiry``) takes plain values; this module reads them from
their owners — the user's phone (``wallet.registration.get_user``), the bound cards
(``wallet.cards.list_wallet_cards``), the merchant (``merchants.service.get_merchant``) — and
hands them over. It sits at the payments' layer (pyproject ``layers``) because the promotions
package sits below wallet and merchants and may not import them. It also mounts the funders'
management router (``flashpay.promotions.router``), so the composition root includes one router.

How a user and a card are keyed (the payment stage must key them the same way, or its caps and
the inquiry's "uses left" would disagree): the user by ``phone:<phone>`` and, when a bound card
carries it, ``id:<the holder's ID fingerprint, hex>``; a card by its card id (``card_key``).

The quote's random draws are keyed on ``payment_ref``, the Idempotency-Key the app will pay
with, and the network's draw key (``draw_key``): with the same ref and nothing changed in
between, the payment draws what the quote showed.
"""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query

from flashpay.api.deps import CurrentUser, IdempotencyDep, ServicesDep
from flashpay.api.errors import not_found
from flashpay.api.types import ID_MAX, IdPath, IdQuery, amount_minor
from flashpay.errors import InvariantError
from flashpay.idempotency import once
from flashpay.merchants.service import Merchant, get_merchant
from flashpay.platform import Platform
from flashpay.promotions import router as management
from flashpay.promotions.campaigns import CardKind, PaymentMode
from flashpay.promotions.context import PaymentContext, UserKeys
from flashpay.promotions.coupons import claim_coupon, coupon_wallet
from flashpay.promotions.errors import PromotionError
from flashpay.promotions.errors import PromotionRefusal as R
from flashpay.promotions.inquiry import InquiryCard, InquiryContext, discounts_for, quote
from flashpay.promotions.schemas import CouponOut, OfferOut, QuoteOut
from flashpay.wallet.cards import WalletCard, WalletCardStatus, list_wallet_cards
from flashpay.wallet.registration import get_user

router = APIRouter(tags=["promotions"])
router.include_router(management.router)

DRAW_KEY_PURPOSE = "promotion_draw"
TextQuery = Annotated[str | None, Query(max_length=20)]
AmountQuery = Annotated[str | None, Query(max_length=24, description='Decimal text, "12.34".')]


def draw_key(platform: Platform) -> bytes:
    """The network's key for random discounts, derived from its key ring (never stored)."""
    return platform.keys.fingerprint(DRAW_KEY_PURPOSE, "v1")


def card_key(card: WalletCard) -> str:
    """The card's key for per-card caps: its id in the card registry (no card number)."""
    return str(card.card.id)


def _active_cards(platform: Platform, user_id: int) -> list[WalletCard]:
    cards = list_wallet_cards(platform=platform, user_id=user_id)
    return [c for c in cards if c.status is WalletCardStatus.ACTIVE]


def _user_keys(platform: Platform, user_id: int, cards: list[WalletCard]) -> UserKeys:
    user = get_user(platform=platform, user_id=user_id)
    if user is None:
        raise InvariantError("an authenticated user exists")
    ids = sorted({c.card.holder_id_fingerprint.hex() for c in cards})
    return UserKeys(phone=user.phone, id_fingerprint=ids[0] if ids else None)


def _inquiry_card(card: WalletCard) -> InquiryCard:
    return InquiryCard(
        fingerprint=card_key(card),
        issuer_id=card.card.issuer_id,
        bin=card.card.first6,
        kind=CardKind(card.card.card_type.value),
    )


def _merchant(platform: Platform, merchant_id: int) -> Merchant:
    found = get_merchant(platform=platform, merchant_id=merchant_id)
    if found is None:
        raise not_found("merchant")
    return found


@router.get("/v1/promotions/discounts", response_model=list[OfferOut])
def discounts(
    user: CurrentUser,
    platform: ServicesDep,
    scene: TextQuery = None,
    city: TextQuery = None,
    merchant_id: IdQuery = None,
    amount: AmountQuery = None,
) -> list[OfferOut]:
    """Every campaign running now (for ``scene``, or the merchant's), whether it applies to your
    cards and, when it does not, why not. With a merchant its scene and city are the merchant's."""
    cards = _active_cards(platform, user.id)
    merchant = None if merchant_id is None else _merchant(platform, merchant_id)
    inquiry = InquiryContext(
        user=_user_keys(platform, user.id, cards),
        cards=tuple(_inquiry_card(c) for c in cards),
        city=city if merchant is None else merchant.city,
        merchant_id=None if merchant is None else merchant.id,
        mcc=None if merchant is None else merchant.mcc,
        acquirer_id=None if merchant is None else merchant.acquirer_id,
        amount_minor=None if amount is None else amount_minor(amount),
    )
    by_key = {card_key(c): c.id for c in cards}
    with platform.engine.connect() as connection:
        offers = discounts_for(
            connection,
            inquiry=inquiry,
            at_ns=platform.clock.now_ns(),
            scene=scene if merchant is None else merchant.scene.value,
        )
    return [OfferOut.of(o, [by_key[f] for f in o.card_fingerprints]) for o in offers]


@router.get("/v1/promotions/quote", response_model=QuoteOut)
def quote_(
    user: CurrentUser,
    platform: ServicesDep,
    merchant_id: Annotated[int, Query(ge=1, le=ID_MAX)],
    amount: Annotated[str, Query(max_length=24)],
    card_id: IdQuery = None,
    payment_ref: Annotated[str, Query(min_length=1, max_length=64)] = "quote",
) -> QuoteOut:
    """What a scan-to-pay of ``amount`` at the merchant with your card (``card_id``, a wallet
    card id; your default card when left out) would get now, exactly as the payment chooses."""
    cards = _active_cards(platform, user.id)
    if card_id is None:
        card = next((c for c in cards if c.is_default), cards[0] if cards else None)
    else:
        card = next((c for c in cards if c.id == card_id), None)
    if card is None:
        raise not_found("card")
    merchant = _merchant(platform, merchant_id)
    keys = _user_keys(platform, user.id, cards)
    context = PaymentContext(
        payment_ref=payment_ref,
        amount_minor=amount_minor(amount),
        merchant_id=merchant.id,
        scene=merchant.scene.value,
        mcc=merchant.mcc,
        city=merchant.city,
        acquirer_id=merchant.acquirer_id,
        issuer_id=card.card.issuer_id,
        bin=card.card.first6,
        card_kind=CardKind(card.card.card_type.value),
        mode=PaymentMode.SCAN,
        # Keyed as the payment stage keys the payer (flashpay.payments.promotion.user_keys):
        # the paying card's holder, so the quote's caps are the payment's.
        user=UserKeys(phone=keys.phone, id_fingerprint=card.card.holder_id_fingerprint.hex(),
                      card_fingerprint=card_key(card)),
        at_ns=platform.clock.now_ns(),
    )  # fmt: skip
    with platform.engine.connect() as connection:
        choice = quote(connection, context=context, draw_key=draw_key(platform))
    return QuoteOut.of(choice, card.id)


@router.post(
    "/v1/promotions/campaigns/{campaign_id}/coupons", status_code=201, response_model=CouponOut
)
def claim(
    campaign_id: IdPath, user: CurrentUser, platform: ServicesDep, idempotency: IdempotencyDep
) -> CouponOut:
    """Claim one coupon of the campaign (one per user; 409 ``promo_coupon_already_held``)."""
    owner = f"phone:{_user_keys(platform, user.id, []).phone}"
    now_ns = platform.clock.now_ns()

    def create(connection: sa.Connection) -> tuple[int, int]:
        coupon_id = claim_coupon(
            connection, campaign_id=campaign_id, owner_key=owner, now_ns=now_ns
        )
        return coupon_id, coupon_id

    coupon_id = once(
        platform.engine,
        idempotency,
        kind="promo_coupon",
        now_ns=platform.clock.now_ns,
        create=create,
        load=lambda _connection, effect_id: effect_id,
    )
    with platform.engine.connect() as connection:
        held = coupon_wallet(connection, owner_keys=[owner], at_ns=now_ns)
    found = next((c for c in held if c.id == coupon_id), None)
    if found is None:  # a retry after the coupon was redeemed or expired
        raise PromotionError(R.COUPON_UNAVAILABLE, f"coupon {coupon_id} is no longer usable")
    return CouponOut.of(found)


@router.get("/v1/promotions/coupons", response_model=list[CouponOut])
def coupons(user: CurrentUser, platform: ServicesDep) -> list[CouponOut]:
    """Your unused, unexpired coupons, soonest to expire first."""
    owner = f"phone:{_user_keys(platform, user.id, []).phone}"
    with platform.engine.connect() as connection:
        held = coupon_wallet(connection, owner_keys=[owner], at_ns=platform.clock.now_ns())
    return [CouponOut.of(c) for c in held]
