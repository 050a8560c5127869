"""The two front ends of QR payments: scan-to-pay (MPM) and payment codes (CPM).

MPM decodes the payload the user scanned and resolves the merchant (and for a dynamic code its
order); CPM verifies the payment code the merchant's terminal scanned and finds the card behind
its token. Both turn a request into an ``Attempt`` — or refuse it (``PaymentError``, nothing
recorded) — and leave every later check to the unit of work. ``Lookups`` reads what a batch's
front ends need in a constant number of queries, one per owner.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from flashpay.cards.service import cards_by_id
from flashpay.clock import NS_PER_SECOND
from flashpay.db import autocommit
from flashpay.merchants.service import (
    Merchant,
    MerchantAndTerminal,
    Order,
    Terminal,
    merchant_terminals,
    orders_by_bill,
)
from flashpay.money import MoneyError
from flashpay.payments.attempts import (
    HOLD_SECONDS_MAX,
    Attempt,
    CollectRequest,
    DeclineReason,
    PaymentKind,
    PaymentRequest,
    ScanRequest,
    fen,
)
from flashpay.payments.errors import (
    PaymentError,
    PaymentRefusal,
)
from flashpay.payments.models import (
    payment_codes,
)
from flashpay.payments.payer import Payer, payers
from flashpay.payments.receipts import (
    AMOUNT_MAX,
)
from flashpay.platform import Platform
from flashpay.qr import payment_codes as codes
from flashpay.qr.merchant_codes import FlashpayCode, read_flashpay_code
from flashpay.qr.mpm import MpmDecodeError, QrError, decode_mpm
from flashpay.wallet.payers import card_ids_by_token


def _read_scanned(payload: str) -> FlashpayCode | DeclineReason:
    try:
        code = read_flashpay_code(decode_mpm(payload))
    except (MpmDecodeError, MoneyError, QrError):
        return DeclineReason.INVALID_CODE
    return DeclineReason.FOREIGN_CODE if code is None else code


@dataclass(slots=True)
class Lookups:
    """What a batch's front ends read, fetched for the whole batch in at most seven queries,
    one per owner and kind of look-up (decision 0017): the merchants with their terminals, the
    numeric payment codes the network recorded (then the cards behind their tokens: two), the
    dynamic orders and the paying cards (the wallet's, then the cards: two). Each scanned
    payload and presented code is decoded once (a busy static code is scanned many times in a
    batch)."""

    scanned: dict[str, FlashpayCode | DeclineReason]
    presented: dict[str, codes.PaymentCode | codes.PaymentCodeError]  # CPM payloads
    recorded: dict[str, codes.PaymentCode]  # numeric codes, by their 19 digits
    by_code: dict[tuple[str, str], MerchantAndTerminal]
    by_id: dict[tuple[int, str], MerchantAndTerminal]
    orders: dict[tuple[int, str], Order]
    by_card: dict[int, Payer]
    by_token: dict[str, Payer]

    @classmethod
    def load(cls, platform: Platform, requests: Sequence[PaymentRequest]) -> Lookups:
        scans = [r for r in requests if isinstance(r, ScanRequest)]
        collects = [r for r in requests if isinstance(r, CollectRequest)]
        scanned: dict[str, FlashpayCode | DeclineReason] = {}
        for scan in scans:
            if scan.payload not in scanned:
                scanned[scan.payload] = _read_scanned(scan.payload)
        presented: dict[str, codes.PaymentCode | codes.PaymentCodeError] = {}
        numerics: set[str] = set()
        for collect in collects:
            text = collect.code.strip()
            try:
                if text.isdigit():
                    numerics.add(codes.parse_numeric_code(text))
                elif text not in presented:
                    presented[text] = codes.read_payment_code(text)
            except codes.PaymentCodeError as exc:
                presented[text] = exc
        recorded = recorded_codes(platform, numerics)
        merchant_codes = {
            (c.merchant_id, c.terminal_id) for c in scanned.values() if isinstance(c, FlashpayCode)
        }
        by_code, by_id = merchant_terminals(
            platform=platform,
            by_code=merchant_codes,
            by_id={(c.merchant_id, c.terminal_code) for c in collects},
        )
        bills = set()
        for c in scanned.values():
            if isinstance(c, FlashpayCode) and c.dynamic and c.bill_number:
                merchant = by_code[(c.merchant_id, c.terminal_id)][0]
                if merchant is not None:
                    bills.add((merchant.id, c.bill_number))
        tokens = {p.token for p in presented.values() if isinstance(p, codes.PaymentCode)}
        by_card, by_token = payers(
            platform=platform,
            wallet_card_ids={s.wallet_card_id for s in scans},
            tokens=tokens | {code.token for code in recorded.values()},
        )
        orders = orders_by_bill(platform=platform, keys=bills)
        return cls(scanned, presented, recorded, by_code, by_id, orders, by_card, by_token)


def scan(platform: Platform, lookups: Lookups, request: ScanRequest) -> Attempt:
    """The attempt of a scanned merchant code, built once from the batch's look-ups (a decline
    builds its own): the attempt is frozen, and a copy per finding cost more than the rest."""
    payer = lookups.by_card.get(request.wallet_card_id)
    if payer is None or payer.user_id != request.user_id:
        raise PaymentError(PaymentRefusal.NOT_FOUND, "no such card in this wallet")
    amount = None if request.amount is None else fen(request.amount)
    if amount is not None and not 0 < amount <= AMOUNT_MAX:
        raise PaymentError(PaymentRefusal.INVALID_AMOUNT, "the amount is a positive number of fen")
    code = lookups.scanned[request.payload]
    if isinstance(code, DeclineReason):
        return _declined(PaymentKind.MPM_STATIC, amount, payer, request, code)
    merchant, terminal = lookups.by_code[(code.merchant_id, code.terminal_id)]
    if merchant is None or terminal is None or merchant.status != "active":
        return _declined(
            PaymentKind.MPM_STATIC, amount, payer, request, DeclineReason.MERCHANT_NOT_FOUND
        )
    if code.dynamic:
        order = lookups.orders.get((merchant.id, code.bill_number)) if code.bill_number else None
        if order is None or code.amount is None or code.amount.amount_minor != order.amount:
            return Attempt(
                kind=PaymentKind.MPM_DYNAMIC, amount=amount or 0, payer=payer,
                merchant=merchant, terminal=terminal, pin=request.pin,
                idempotency=request.idempotency, reason=DeclineReason.ORDER_NOT_FOUND,
            )  # fmt: skip
        if amount is not None and amount != order.amount:
            raise PaymentError(
                PaymentRefusal.AMOUNT_MISMATCH, "a dynamic code carries its own amount"
            )
        expired = order.expires_at_ns <= platform.clock.now_ns()
        return Attempt(
            kind=PaymentKind.MPM_DYNAMIC, amount=order.amount, payer=payer, merchant=merchant,
            terminal=terminal, order_id=order.id, order_expires_at_ns=order.expires_at_ns,
            pin=request.pin, reason=DeclineReason.ORDER_EXPIRED if expired else None,
            bill_number=order.bill_number, idempotency=request.idempotency,
        )  # fmt: skip
    if amount is None:
        raise PaymentError(PaymentRefusal.AMOUNT_REQUIRED, "a static code needs the amount to pay")
    return Attempt(
        kind=PaymentKind.MPM_STATIC, amount=amount, payer=payer, merchant=merchant,
        terminal=terminal, pin=request.pin, idempotency=request.idempotency,
    )  # fmt: skip


def _declined(
    kind: PaymentKind, amount: int | None, payer: Payer, request: ScanRequest, reason: DeclineReason
) -> Attempt:
    """A scan declined before its merchant is known: what the answer and the record carry."""
    return Attempt(
        kind=kind, amount=amount or 0, payer=payer, pin=request.pin,
        idempotency=request.idempotency, reason=reason,
    )  # fmt: skip


_CHECK_DECLINE = {  # a payment code's check, as the payment's decline
    codes.CodeDecline.EXPIRED: DeclineReason.CODE_EXPIRED,
    codes.CodeDecline.NOT_YET_VALID: DeclineReason.CODE_INVALID,
}


def collect(platform: Platform, lookups: Lookups, request: CollectRequest) -> Attempt:
    merchant, terminal = lookups.by_id[(request.merchant_id, request.terminal_code)]
    if merchant is None:
        raise PaymentError(PaymentRefusal.NOT_FOUND, "no such merchant")
    if terminal is None:
        raise PaymentError(PaymentRefusal.UNKNOWN_TERMINAL, "no such terminal at this merchant")
    amount = fen(request.amount)
    if not 0 < amount <= AMOUNT_MAX:
        raise PaymentError(PaymentRefusal.INVALID_AMOUNT, "the amount is a positive number of fen")
    if not 60 <= request.hold_seconds <= HOLD_SECONDS_MAX:
        raise PaymentError(PaymentRefusal.INVALID_HOLD, "a hold lasts 60 s to 7 days")
    text = request.code.strip()
    now_s = platform.clock.now_ns() // NS_PER_SECOND
    master = platform.keys.payment_code_master
    try:
        if text.isdigit():
            digits = codes.parse_numeric_code(text)
            presented = lookups.recorded.get(digits)
            if presented is None:
                return _collected(request, amount, merchant, terminal, DeclineReason.CODE_INVALID)
            check = codes.verify_numeric_code(
                digits, presented, key=codes.token_key(master, presented.token),
                lookup_key=platform.keys.payment_code_lookup, now_s=now_s, used=(),
            )  # fmt: skip
        else:
            found = lookups.presented[text]
            if isinstance(found, codes.PaymentCodeError):
                raise found
            presented = found
            check = codes.verify_payment_code(
                presented, key=codes.token_key(master, presented.token), now_s=now_s, used=()
            )
    except codes.PaymentCodeError as exc:
        foreign = exc.reason is codes.CodeDecline.FOREIGN
        declined = DeclineReason.FOREIGN_CODE if foreign else DeclineReason.INVALID_CODE
        return _collected(request, amount, merchant, terminal, declined)
    reason = None if check is None else _CHECK_DECLINE.get(check, DeclineReason.CODE_INVALID)
    payer = lookups.by_token.get(presented.token)
    if payer is None and reason is None:
        reason = DeclineReason.CODE_INVALID  # the card was unbound since
    return _collected(
        request, amount, merchant, terminal, reason, payer, (presented.token, presented.atc)
    )


def _collected(
    request: CollectRequest,
    amount: int,
    merchant: Merchant,
    terminal: Terminal,
    reason: DeclineReason | None,
    payer: Payer | None = None,
    code_key: tuple[str, int] | None = None,
) -> Attempt:
    """The one attempt of a collected payment code (built once, declined or not)."""
    return Attempt(
        kind=PaymentKind.CPM, amount=amount, payer=payer, merchant=merchant, terminal=terminal,
        code_key=code_key, two_phase=not request.capture, hold_seconds=request.hold_seconds,
        reason=reason, idempotency=request.idempotency,
    )  # fmt: skip


def recorded_codes(platform: Platform, numerics: Collection[str]) -> dict[str, codes.PaymentCode]:
    """The recorded payment codes behind numeric codes, by their digits: one query of ours, then
    the cards behind their tokens from the wallet and the cards domains (their expiry is the
    token's)."""
    if not numerics:
        return {}
    with autocommit(platform.engine) as connection:
        found = connection.execute(
            sa.select(payment_codes).where(payment_codes.c.numeric.in_(sorted(numerics)))
        ).all()
        card_ids = card_ids_by_token(connection, {str(row.token) for row in found})
        bound = cards_by_id(connection=connection, card_ids=set(card_ids.values()))
    expiry = {
        token: bound[card_id].expiry for token, card_id in card_ids.items() if card_id in bound
    }
    rows = [row for row in found if str(row.token) in expiry]
    return {
        str(row.numeric): codes.PaymentCode(
            token=str(row.token),
            token_expiry=expiry[str(row.token)],
            aid=codes.AID_CREDIT if row.credit else codes.AID_DEBIT,
            atc=int(row.atc),
            unpredictable_number=bytes(row.unpredictable),
            issued_at=int(row.issued_at),
            key_version=int(row.key_version),
            cryptogram=bytes(row.cryptogram),
        )
        for row in rows
    }
