"""QR payments over HTTP: the wallet's side (``/v1/payments``, payment codes, limits) and the
merchant's side (``/v1/merchant/payments``: collect with a payment code, capture, void, refund).

A declined payment is a 201 with ``status: declined`` and its reason (decision 0005). A user sees
only their own payments and a merchant only its own; anyone else gets a 404.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from flashpay.api.deps import CurrentMerchant, CurrentUser, IdempotencyDep, ServicesDep
from flashpay.api.errors import ApiError, not_found
from flashpay.api.pagination import CursorQuery, LimitQuery, Page, before_id, encode_cursor
from flashpay.api.schemas import money_text
from flashpay.api.types import IdPath, amount_minor, money
from flashpay.chain.deps import ChainLogDep
from flashpay.chain.receipt import build_receipt
from flashpay.clock import NS_PER_SECOND, to_datetime
from flashpay.payments import holds, refunds
from flashpay.payments.attempts import (
    CollectRequest,
    Payment,
    PaymentRequest,
    PaymentStatus,
    ScanRequest,
)
from flashpay.payments.codes import issue_code
from flashpay.payments.deps import SwitchDep
from flashpay.payments.errors import PaymentError
from flashpay.payments.legs import chain_id
from flashpay.payments.queries import get_payment, list_payments
from flashpay.payments.queries import history as payment_history
from flashpay.payments.schemas import (
    AmountIn,
    CollectIn,
    LimitsIn,
    PaymentCodeOut,
    PaymentOut,
    PromotionOut,
    ReceiptOut,
    ScanIn,
)
from flashpay.payments.settings import set_payment_limits
from flashpay.payments.switch import PaymentSwitch
from flashpay.wallet.pin import check_password

router = APIRouter(tags=["payments"])


def _fen(text: str) -> int:
    return amount_minor(text)


def _pay(switch: PaymentSwitch, request: PaymentRequest) -> Payment:
    """The payment through the worker's switch: requests that meet there go to
    ``submit_payments`` together (group commit, ``flashpay.payments.switch``)."""
    answer = switch.submit(request)
    if isinstance(answer, PaymentError):
        raise answer
    return answer


def _out(platform: ServicesDep, p: Payment, *, with_history: bool = False) -> PaymentOut:
    history = payment_history(platform=platform, payment_id=p.id) if with_history else None
    return PaymentOut.of(p, history)


# -- the wallet's side --------------------------------------------------------------------------
@router.post("/v1/payments/qr", status_code=201, response_model=PaymentOut)
def pay_scanned(
    body: ScanIn,
    user: CurrentUser,
    platform: ServicesDep,
    switch: SwitchDep,
    idempotency: IdempotencyDep,
) -> PaymentOut:
    """Pay a merchant's code you scanned (static: give the amount; dynamic: it has one). The PIN
    is needed above your password-free threshold. Send an ``Idempotency-Key``."""
    amount = money(body.amount) if body.amount is not None else None
    request = ScanRequest(user.id, body.payload, body.card_id, amount, body.pin, idempotency)
    return _out(platform, _pay(switch, request))


@router.post("/v1/cards/{card_id}/payment-code", status_code=201, response_model=PaymentCodeOut)
def payment_code(
    card_id: IdPath, user: CurrentUser, platform: ServicesDep, response: Response
) -> PaymentCodeOut:
    """A one-time payment code for the merchant to scan (valid 60 s). Not stored for replay."""
    issued = issue_code(platform=platform, user_id=user.id, wallet_card_id=card_id)
    response.headers["Cache-Control"] = "no-store"
    return PaymentCodeOut(
        qr_payload=issued.qr_payload,
        numeric=issued.numeric,
        expires_at=to_datetime(issued.code.expires_at * NS_PER_SECOND),
    )


@router.put("/v1/me/limits", status_code=204)
def set_limits(body: LimitsIn, user: CurrentUser, platform: ServicesDep) -> Response:
    """Your password-free threshold per payment (≤ ¥1,000) and daily QR limit (≤ ¥50,000)."""
    check_password(platform=platform, user_id=user.id, password=body.password)
    set_payment_limits(
        platform=platform,
        user_id=user.id,
        free_per_payment=_fen(body.free_per_payment),
        qr_daily_limit=_fen(body.qr_daily_limit),
    )
    return Response(status_code=204)


def _page(items: list[Payment], limit: int, platform: ServicesDep) -> Page[PaymentOut]:
    page = items[:limit]
    return Page[PaymentOut](
        items=[_out(platform, p) for p in page],
        next_cursor=encode_cursor({"before": page[-1].id}) if len(items) > limit else None,
    )


@router.get("/v1/payments", response_model=Page[PaymentOut])
def my_payments(
    user: CurrentUser, platform: ServicesDep, limit: LimitQuery = 20, cursor: CursorQuery = None
) -> Page[PaymentOut]:
    rows = list_payments(
        platform=platform, user_id=user.id, before_id=before_id(cursor), limit=limit + 1
    )
    return _page(rows, limit, platform)


@router.get("/v1/payments/{payment_id}", response_model=PaymentOut)
def my_payment(payment_id: IdPath, user: CurrentUser, platform: ServicesDep) -> PaymentOut:
    found = get_payment(platform=platform, payment_id=payment_id, user_id=user.id)
    if found is None:
        raise not_found("payment")
    return _out(platform, found, with_history=True)


def _receipt(platform: ServicesDep, log: ChainLogDep, p: Payment) -> ReceiptOut:
    if p.voucher is None or p.status in (PaymentStatus.DECLINED, PaymentStatus.VOIDED):
        raise ApiError(status_code=409, code="no_receipt", message=f"the payment is {p.status}")
    chain = chain_id(platform, p)
    audit = build_receipt(log, chain) if chain is not None else None
    return ReceiptOut(
        voucher=p.voucher,
        transfer_id=str(p.id),
        status=p.status.value,
        amount=money_text(p.captured or p.amount),
        currency=p.currency,
        from_card=p.card_display or "",
        recipient=p.merchant_name or "",
        completed_at=to_datetime(p.updated_at_ns),
        audit=audit,
        original_amount=money_text(p.amount),
        discount=money_text(p.discount),
        paid=money_text(p.amount - p.discount),
        promotions=[PromotionOut.of(s) for s in p.promotions],
    )


@router.get("/v1/payments/{payment_id}/receipt", response_model=ReceiptOut)
def my_receipt(
    payment_id: IdPath, user: CurrentUser, platform: ServicesDep, log: ChainLogDep
) -> ReceiptOut:
    """The receipt (voucher number; the audit log's proof once a final checkpoint covers it)."""
    found = get_payment(platform=platform, payment_id=payment_id, user_id=user.id)
    if found is None:
        raise not_found("payment")
    return _receipt(platform, log, found)


# -- the merchant's side ------------------------------------------------------------------------
@router.post("/v1/merchant/payments", status_code=201, response_model=PaymentOut)
def collect(
    body: CollectIn,
    merchant: CurrentMerchant,
    platform: ServicesDep,
    switch: SwitchDep,
    idempotency: IdempotencyDep,
) -> PaymentOut:
    """Collect with a payment code the terminal scanned; ``capture: false`` only authorizes."""
    request = CollectRequest(merchant.id, body.code, money(body.amount), body.terminal,
                                body.capture, body.hold_seconds, idempotency)  # fmt: skip
    return _out(platform, _pay(switch, request))


@router.get("/v1/merchant/payments", response_model=Page[PaymentOut])
def merchant_payments(
    merchant: CurrentMerchant,
    platform: ServicesDep,
    day: str | None = None,
    terminal: str | None = None,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
) -> Page[PaymentOut]:
    """The merchant's payments, newest first; ``day`` (YYYY-MM-DD, Beijing) and ``terminal``."""
    rows = list_payments(
        platform=platform,
        merchant_id=merchant.id,
        day=day,
        terminal=terminal,
        before_id=before_id(cursor),
        limit=limit + 1,
    )
    return _page(rows, limit, platform)


def _merchant_payment(platform: ServicesDep, merchant_id: int, payment_id: int) -> Payment:
    found = get_payment(platform=platform, payment_id=payment_id, merchant_id=merchant_id)
    if found is None:
        raise not_found("payment")
    return found


@router.get("/v1/merchant/payments/{payment_id}", response_model=PaymentOut)
def merchant_payment(
    payment_id: IdPath, merchant: CurrentMerchant, platform: ServicesDep
) -> PaymentOut:
    return _out(platform, _merchant_payment(platform, merchant.id, payment_id), with_history=True)


@router.get("/v1/merchant/payments/{payment_id}/receipt", response_model=ReceiptOut)
def merchant_receipt(
    payment_id: IdPath, merchant: CurrentMerchant, platform: ServicesDep, log: ChainLogDep
) -> ReceiptOut:
    return _receipt(platform, log, _merchant_payment(platform, merchant.id, payment_id))


@router.post("/v1/merchant/payments/{payment_id}/capture", response_model=PaymentOut)
def capture(
    payment_id: IdPath,
    body: AmountIn,
    merchant: CurrentMerchant,
    platform: ServicesDep,
    idempotency: IdempotencyDep,
) -> PaymentOut:
    amount = money(body.amount)
    p = holds.capture(platform=platform, merchant_id=merchant.id, payment_id=payment_id,
                   amount=amount, idempotency=idempotency)  # fmt: skip
    return _out(platform, p)


@router.post("/v1/merchant/payments/{payment_id}/void", response_model=PaymentOut)
def void(
    payment_id: IdPath,
    merchant: CurrentMerchant,
    platform: ServicesDep,
    idempotency: IdempotencyDep,
) -> PaymentOut:
    p = holds.void(platform=platform, merchant_id=merchant.id, payment_id=payment_id,
                idempotency=idempotency)  # fmt: skip
    return _out(platform, p)


@router.post(
    "/v1/merchant/payments/{payment_id}/refunds", status_code=201, response_model=PaymentOut
)
def refund(
    payment_id: IdPath,
    body: AmountIn,
    merchant: CurrentMerchant,
    platform: ServicesDep,
    idempotency: IdempotencyDep,
) -> PaymentOut:
    """Refund all or part of a payment to the card it came from. Send an ``Idempotency-Key``:
    each accepted request is one refund."""
    amount = money(body.amount)
    p = refunds.refund(platform=platform, merchant_id=merchant.id, payment_id=payment_id,
                  amount=amount, idempotency=idempotency)  # fmt: skip
    return _out(platform, p)
