"""``/v1/promotions`` for the app user — what applies to me, a quote (by merchant or by a scanned
code, for each of my cards), claiming coupons, my coupons — and the funder's coupon push.

The inquiry (``flashpay.promotions.inquiry``) takes plain values; this module reads them from
their owners — the user's phone (``wallet.registration.get_user``), the bound cards
(``wallet.cards.list_wallet_cards``), the merchant (``merchants.service.get_merchant``) — and
hands them over. It sits at the payments' layer (pyproject ``layers``) because the promotions
package sits below wallet and merchants and may not import them. It also mounts the funders'
management router (``flashpay.promotions.router``), so the composition root includes one router.

How a user and a card are keyed (the payment stage must key them the same way, or its caps and
the inquiry's "uses left" would disagree): the user by ``phone:<phone>`` and, when a bound card
carries it, ``id:<the holder's ID fingerprint, hex>``; a card by its card id (``card_key``).

A scanned payload is read as the payment's scan-to-pay front reads it (``qr.mpm.decode_mpm``,
``qr.merchant_codes.read_flashpay_code``) and the merchant resolved by the merchants domain's owner
functions (``merchant_terminals``, ``orders_by_bill``); a dynamic code's amount is its order's.

A coupon push names users by phone or wallet user id; they are resolved in one query
(``wallet.payers.phones_of_users``) and a coupon goes to each one's ``phone:`` key, the key the
app claims and lists coupons under.

The quote's random draws are keyed on ``payment_ref``, the Idempotency-Key the app will pay
with, and the network's draw key (``draw_key``): with the same ref and nothing changed in
between, the payment draws what the quote showed.
"""

from __future__ import annotations

from typing import Annotated, Protocol

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import TypeAdapter

from flashpay.api.deps import CurrentUser, IdempotencyDep, ServicesDep
from flashpay.api.errors import ApiError, not_found
from flashpay.api.schemas import money_text
from flashpay.api.types import ID_MAX, IdPath, IdQuery, amount_minor
from flashpay.errors import InvariantError
from flashpay.idempotency import once
from flashpay.merchants.service import Merchant, get_merchant, merchant_terminals, orders_by_bill
from flashpay.money import MoneyError
from flashpay.platform import Platform
from flashpay.promotions import router as management
from flashpay.promotions.campaigns import CardKind, PaymentMode
from flashpay.promotions.context import PaymentContext, UserKeys
from flashpay.promotions.coupons import (
    PUSH_USERS_MAX,
    claim_coupon,
    coupon_wallet,
    held_coupons,
    push_coupons,
)
from flashpay.promotions.errors import PromotionError
from flashpay.promotions.errors import PromotionRefusal as R
from flashpay.promotions.inquiry import (
    CAMPAIGN_IDS_MAX,
    InquiryCard,
    InquiryContext,
    discounts_for,
    quote,
    quote_cards,
)
from flashpay.promotions.schemas import (
    CardQuoteOut,
    CouponOut,
    CouponPushIn,
    CouponPushOut,
    OfferOut,
    PushedOut,
    QuoteOut,
    ScanQuoteOut,
)
from flashpay.qr.merchant_codes import read_flashpay_code
from flashpay.qr.mpm import MpmDecodeError, QrError, decode_mpm
from flashpay.wallet.cards import WalletCard, WalletCardStatus, list_wallet_cards
from flashpay.wallet.payers import phones_of_users
from flashpay.wallet.registration import get_user

router = APIRouter(tags=["promotions"])
router.include_router(management.router)

DRAW_KEY_PURPOSE = "promotion_draw"
TextQuery = Annotated[str | None, Query(max_length=20)]
OFFERS_JSON = TypeAdapter(list[OfferOut])
AmountQuery = Annotated[str | None, Query(max_length=24, description='Decimal text, "12.34".')]


class NewUserFacts(Protocol):
    first_payment_ever: bool
    first_in_scene: bool


class NewUserReader(Protocol):
    """``flashpay.payments.history.new_user_facts``, handed over by the composition root."""

    def __call__(
        self, platform: Platform, connection: sa.Connection, *, user_id: int, scene: str
    ) -> NewUserFacts: ...


async def _new_user_reader(request: Request) -> NewUserReader | None:
    found = getattr(request.app.state, "new_user_facts", None)
    return found if callable(found) else None


NewUserDep = Annotated[NewUserReader | None, Depends(_new_user_reader)]


def _new_user(
    reader: NewUserReader | None,
    platform: Platform,
    connection: sa.Connection,
    user_id: int,
    scene: str,
) -> tuple[bool, bool]:
    """(first payment ever, first in the scene) as the payment stage decides them; without the
    payments in this app (no reader) a user counts as not new, which never promises too much."""
    if reader is None:
        return False, False
    facts = reader(platform, connection, user_id=user_id, scene=scene)
    return facts.first_payment_ever, facts.first_in_scene


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
    campaign_id: Annotated[list[int] | None, Query()] = None,
) -> Response:
    """Every campaign running now that can apply here (the scene, or the merchant: its scene,
    city and acquirer), whether it applies to each of your cards and, when it does not, why not.
    With ``campaign_id`` (repeatable, at most 50): exactly those campaigns, in any state — why
    the one you saw advertised does not apply here."""
    ids = campaign_id or []
    if len(ids) > CAMPAIGN_IDS_MAX or any(not 1 <= i <= ID_MAX for i in ids):
        raise ApiError(
            status_code=422,
            code="validation_error",
            message=f"campaign_id: at most {CAMPAIGN_IDS_MAX} positive ids",
        )
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
            campaign_ids=ids,
        )
    # Serialized once, here: returned as the model list, FastAPI would validate every offer
    # again against ``response_model`` (which stays, for the OpenAPI schema) — issue 15.
    out = [OfferOut.of(o, [by_key[f] for f in o.card_fingerprints], by_key) for o in offers]
    return Response(content=OFFERS_JSON.dump_json(out), media_type="application/json")


def _scan_context(
    payment_ref: str,
    amount: int,
    merchant: Merchant,
    card: WalletCard,
    keys: UserKeys,
    at_ns: int,
    new_user: tuple[bool, bool] = (False, False),
) -> PaymentContext:
    """A scan-to-pay with ``card`` at ``merchant``, keyed as the payment keys it."""
    return PaymentContext(
        payment_ref=payment_ref,
        amount_minor=amount,
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
        at_ns=at_ns,
        first_payment_ever=new_user[0],
        first_in_scene=new_user[1],
    )  # fmt: skip


@router.get("/v1/promotions/quote", response_model=QuoteOut)
def quote_(
    user: CurrentUser,
    platform: ServicesDep,
    new_user_reader: NewUserDep,
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
    with platform.engine.connect() as connection:
        new_user = _new_user(new_user_reader, platform, connection, user.id, merchant.scene.value)
        context = _scan_context(
            payment_ref, amount_minor(amount), merchant, card, keys, platform.clock.now_ns(),
            new_user,
        )  # fmt: skip
        choice = quote(connection, context=context, draw_key=draw_key(platform))
    return QuoteOut.of(choice, card.id)


PAYLOAD_CHARS_MAX = 512  # an EMVCo payload is at most 512 characters


def _scanned(
    platform: Platform, payload: str, amount: str | None
) -> tuple[Merchant, int, str | None]:
    """The merchant, the amount and the bill number of a scanned code, as the payment reads
    them: a dynamic code's amount is its order's (another amount is refused); a static code
    needs one."""
    try:
        code = read_flashpay_code(decode_mpm(payload))
    except (MpmDecodeError, MoneyError, QrError) as exc:
        raise PromotionError(R.INVALID_CODE, "the payload is not a merchant code") from exc
    if code is None:
        raise PromotionError(R.INVALID_CODE, "the code is not a flashpay merchant's")
    by_code, _ = merchant_terminals(
        platform=platform, by_code={(code.merchant_id, code.terminal_id)}
    )
    merchant, terminal = by_code[(code.merchant_id, code.terminal_id)]
    if merchant is None or terminal is None or merchant.status != "active":
        raise not_found("merchant")
    given = None if amount is None else amount_minor(amount)
    if not code.dynamic:
        if given is None:
            raise PromotionError(R.AMOUNT_REQUIRED, "a static code is quoted for an amount")
        return merchant, given, None
    bill = code.bill_number
    order = orders_by_bill(platform=platform, keys={(merchant.id, bill)}).get(
        (merchant.id, bill or "")
    ) if bill else None  # fmt: skip
    if order is None or code.amount is None or code.amount.amount_minor != order.amount:
        raise not_found("order")
    if given is not None and given != order.amount:
        raise PromotionError(R.AMOUNT_MISMATCH, "a dynamic code carries its own amount")
    return merchant, order.amount, order.bill_number


@router.get("/v1/promotions/scan-quote", response_model=ScanQuoteOut)
def scan_quote(
    user: CurrentUser,
    platform: ServicesDep,
    new_user_reader: NewUserDep,
    payload: Annotated[str, Query(min_length=1, max_length=PAYLOAD_CHARS_MAX)],
    amount: AmountQuery = None,
    payment_ref: Annotated[str, Query(min_length=1, max_length=64)] = "quote",
) -> ScanQuoteOut:
    """A scanned merchant code (static with ``amount``, or dynamic: its order's amount) quoted
    for each of your active cards: the benefit, what you would pay, what is left — what the
    payment with that card and ``payment_ref`` as its Idempotency-Key then applies."""
    merchant, amount_due, bill = _scanned(platform, payload, amount)
    cards = _active_cards(platform, user.id)
    keys = _user_keys(platform, user.id, cards)
    now_ns = platform.clock.now_ns()
    with platform.engine.connect() as connection:
        new_user = _new_user(new_user_reader, platform, connection, user.id, merchant.scene.value)
        contexts = [
            _scan_context(payment_ref, amount_due, merchant, c, keys, now_ns, new_user)
            for c in cards
        ]
        quoted = quote_cards(connection, contexts=contexts, draw_key=draw_key(platform))
    return ScanQuoteOut(
        merchant_id=merchant.id, merchant_name=merchant.display_name, scene=merchant.scene.value,
        dynamic=bill is not None, bill_number=bill, amount=money_text(amount_due),
        amount_minor=amount_due, payment_ref=payment_ref,
        cards=[CardQuoteOut.of_card(q, c.id) for q, c in zip(quoted, cards, strict=True)],
    )  # fmt: skip


@router.post("/v1/promotions/campaigns/{campaign_id}/coupon-pushes", response_model=CouponPushOut)
def push(
    campaign_id: IdPath,
    body: CouponPushIn,
    caller: management.FunderCaller,
    platform: ServicesDep,
    idempotency: IdempotencyDep,
) -> CouponPushOut:
    """The funder pushes the campaign's coupon to users by phone and/or user id (at most 1,000
    in all): per user ``issued``, or why not (``promo_unknown_user``,
    ``promo_coupon_already_held``, ``promo_coupons_all_issued``). The campaign must be the
    caller's (404 otherwise), offer coupons and not be ended or spent. A retry with the same
    Idempotency-Key pushes nothing more: it gets the stored answer, or — when the first answer
    was lost after the push committed — who holds a coupon now (``held``)."""
    users = [f"phone:{p}" for p in dict.fromkeys(body.phones)]
    users += [f"user:{i}" for i in dict.fromkeys(body.user_ids)]
    if len(users) > PUSH_USERS_MAX:
        raise ApiError(status_code=422, code="validation_error",
                       message=f"at most {PUSH_USERS_MAX} users in one push")  # fmt: skip
    funder = management.funder_of(platform, caller)
    now_ns = platform.clock.now_ns()

    def owners(connection: sa.Connection) -> dict[str, str | None]:
        phones, by_id = phones_of_users(connection, phones=body.phones, user_ids=body.user_ids)
        found: dict[str, str | None] = {}
        for given in users:
            kind, _, value = given.partition(":")
            phone = (
                (value if value in phones else None) if kind == "phone" else by_id.get(int(value))
            )
            found[given] = None if phone is None else f"phone:{phone}"
        return found

    def answer(connection: sa.Connection, outcomes: dict[str, R | None] | None) -> CouponPushOut:
        keys = owners(connection)
        held = held_coupons(
            connection, campaign_id=campaign_id, owner_keys=[k for k in keys.values() if k]
        )
        items = []
        for given, key in keys.items():
            if key is None:
                items.append(PushedOut.of(given, R.UNKNOWN_USER, None))
            elif outcomes is None:  # a replay: what the user holds now
                coupon = held.get(key)
                items.append(
                    PushedOut.of(given, "held" if coupon else R.COUPONS_ALL_ISSUED, coupon)
                )
            else:
                refused = outcomes[key]
                items.append(PushedOut.of(given, refused or "issued", held.get(key)))
        issued = sum(1 for item in items if item.outcome == "issued")
        return CouponPushOut(campaign_id=campaign_id, issued=issued, users=items)

    def create(connection: sa.Connection) -> tuple[int, CouponPushOut]:
        management.owned_campaign(connection, campaign_id, funder)
        keys = [k for k in owners(connection).values() if k is not None]
        outcomes = push_coupons(
            connection, campaign_id=campaign_id, owner_keys=keys, now_ns=now_ns, funder=funder
        )
        return campaign_id, answer(connection, outcomes)

    def load(connection: sa.Connection, _campaign_id: int) -> CouponPushOut:
        management.owned_campaign(connection, campaign_id, funder)
        return answer(connection, None)

    return once(
        platform.engine,
        idempotency,
        kind="promo_coupon_push",
        now_ns=platform.clock.now_ns,
        create=create,
        load=load,
    )


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
