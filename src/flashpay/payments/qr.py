"""QR payments: scan-to-pay (MPM), show-to-pay (CPM), two-phase holds, refunds.

One pipeline serves both modes. The front ends differ — MPM decodes the payload the user scanned
and resolves the merchant (and for a dynamic code its order); CPM verifies the payment code the
merchant's terminal scanned and finds the card behind its token — then every payment runs the
same steps, in the order of ``DeclineReason``:

1. verification: the PIN when given (``wrong_pin``, ``pin_locked``, ``pin_not_set``), else the
   password-free rules (``pin_required`` above the user's threshold);
2. the issuer's checks: card frozen, closed or expired;
3. one transaction that records the payment with its PIN outcome, claims a dynamic order or a
   payment code (``order_already_paid``, ``code_already_used`` — exactly once under
   concurrency, by a conditional UPDATE), and reserves the People's Bank of China limits
   (``limit_exceeded``: all QR payments ≤ the user's daily limit, default ¥5,000; password-free
   ≤ ¥1,000 a day; static codes ≤ ¥500 a day; the card's issuer limit);
4. the ledger: the six linked transfers of ARCHITECTURE.md §4 with the MDR split of the
   merchant's scene (``insufficient_funds`` is the ledger's answer, in the same transaction as
   the posting); a two-phase payment posts them as pending transfers with a timeout instead;
5. the record completes (``completed``/``authorized``) or is declined, and gives back its limits.

Refunds post a reversing chain for the difference between the split of the refunded total
after and before, so partial refunds add up to an exact reversal. Ledger ids derive from the
payment id, so a retry can never post twice.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import secrets
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from flashpay.cards.models import cards
from flashpay.cards.service import Card, CardStatus, card_from_row, is_expired
from flashpay.clock import NS_PER_SECOND
from flashpay.db import autocommit
from flashpay.errors import invariant
from flashpay.idempotency import (
    Effect,
    EffectConflictError,
    IdempotencyTag,
    bind_effects,
    find_effects,
)
from flashpay.institutions.chart import (
    LEDGER_CNY,
    AccountCode,
    TransferCode,
    institution_account_id,
)
from flashpay.institutions.definition import CardType
from flashpay.institutions.service import institution_code, network_code
from flashpay.ledger import CreateTransferResult, Transfer, TransferFlags
from flashpay.ledger.ids import derive_id, new_id
from flashpay.ledger.service import BATCH_EVENTS_MAX
from flashpay.merchants.fees import FeeSplit
from flashpay.merchants.models import merchants, qr_orders, terminals
from flashpay.merchants.service import (
    Merchant,
    MerchantAndTerminal,
    Order,
    Terminal,
    get_merchants,
    merchant_terminals,
    orders_by_bill,
)
from flashpay.money import MoneyError
from flashpay.payments import limits
from flashpay.payments.fence import fence
from flashpay.payments.models import (
    payment_codes,
    payment_events,
    payment_refunds,
    payments,
    token_counters,
)
from flashpay.payments.payer import Payer, payers
from flashpay.platform import Platform
from flashpay.qr import payment_codes as codes
from flashpay.qr.merchant_codes import FlashpayCode, read_flashpay_code
from flashpay.qr.mpm import MpmDecodeError, QrError, decode_mpm
from flashpay.wallet.cards import WalletCardStatus
from flashpay.wallet.errors import WalletError, WalletRefusal
from flashpay.wallet.models import wallet_cards, wallet_users
from flashpay.wallet.pin import PinCheck, PinState, check_pin, pin_state_after, record_pin_check
from flashpay.wallet.policy import FREE_DAILY_MAX, STATIC_DAILY_MAX

logger = logging.getLogger(__name__)

HOLD_SECONDS_DEFAULT = 2 * 3600
HOLD_SECONDS_MAX = 7 * 24 * 3600
AMOUNT_MAX = 10**12
RERUNS_MAX = 2  # a batch runs again after a twin request bound one of its keys first
# What an Idempotency-Key is bound to, by request kind (the effect id is the payment's id).
EFFECT_PAYMENT = "payment"
EFFECT_SETTLEMENT = "hold_settlement"
EFFECT_REFUND = "refund"


class PaymentKind(StrEnum):
    MPM_STATIC = "mpm_static"
    MPM_DYNAMIC = "mpm_dynamic"
    CPM = "cpm"


class PaymentStatus(StrEnum):
    CREATED = "created"
    AUTHORIZED = "authorized"
    COMPLETED = "completed"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"
    EXPIRED = "expired"
    DECLINED = "declined"


class DeclineReason(StrEnum):
    """Why a payment was declined; closed, in the order the checks run."""

    INVALID_CODE = "invalid_code"
    FOREIGN_CODE = "foreign_code"
    MERCHANT_NOT_FOUND = "merchant_not_found"
    ORDER_NOT_FOUND = "order_not_found"
    ORDER_EXPIRED = "order_expired"
    CODE_EXPIRED = "code_expired"
    CODE_INVALID = "code_invalid"
    PIN_REQUIRED = "pin_required"
    PIN_NOT_SET = "pin_not_set"  # a user without a PIN cannot be locked: checked first
    PIN_LOCKED = "pin_locked"
    WRONG_PIN = "wrong_pin"
    CARD_FROZEN = "card_frozen"
    CARD_CLOSED = "card_closed"
    CARD_EXPIRED = "card_expired"
    ORDER_ALREADY_PAID = "order_already_paid"
    CODE_ALREADY_USED = "code_already_used"
    LIMIT_EXCEEDED = "limit_exceeded"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    PROCESSING_ERROR = "processing_error"


class PaymentError(ValueError):
    """A request that cannot be carried out (nothing recorded); ``code``/``status`` for HTTP."""

    def __init__(self, code: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True, slots=True)
class Payment:
    id: int
    kind: PaymentKind
    user_id: int | None
    wallet_card_id: int | None
    card_display: str | None
    merchant_id: int | None
    merchant_name: str | None
    terminal: str | None
    order_id: int | None
    bill_number: str | None
    amount: int
    captured: int
    refunded: int
    currency: str
    status: PaymentStatus
    decline_reason: DeclineReason | None
    voucher: str | None
    pin_verified: bool
    two_phase: bool
    hold_expires_at_ns: int | None
    created_at_ns: int
    updated_at_ns: int


@dataclass(frozen=True, slots=True)
class PaymentEvent:
    seq: int
    status: PaymentStatus
    amount: int
    at_ns: int
    detail: str | None


@dataclass(slots=True)
class _Attempt:
    """Everything a payment needs once its front end has run; the pipeline fills the rest."""

    kind: PaymentKind
    amount: int
    payer: Payer | None = None
    merchant: Merchant | None = None
    terminal: Terminal | None = None
    order_id: int | None = None
    order_expires_at_ns: int | None = None
    code_key: tuple[str, int] | None = None
    pin: str | None = None
    two_phase: bool = False
    hold_seconds: int = HOLD_SECONDS_DEFAULT
    reason: DeclineReason | None = None
    bill_number: str | None = None
    idempotency: IdempotencyTag | None = None


# -- requests and the batch ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ScanRequest:
    """The user's app scanned ``payload`` (MPM) and pays it with a bound card: ``amount`` for a
    static code (a dynamic code carries its own; giving a different one is a 422)."""

    user_id: int
    payload: str
    wallet_card_id: int
    amount: int | None = None
    pin: str | None = None
    idempotency: IdempotencyTag | None = None  # the caller's key, bound to the payment


@dataclass(frozen=True, slots=True)
class CollectRequest:
    """The merchant's terminal scanned a payment code (CPM payload or the 19 digits) and
    collects ``amount``; ``capture=False`` only authorizes (a hold, captured or voided later)."""

    merchant_id: int
    code: str
    amount: int
    terminal_code: str = "T0001"
    capture: bool = True
    hold_seconds: int = HOLD_SECONDS_DEFAULT
    idempotency: IdempotencyTag | None = None  # the caller's key, bound to the payment


PaymentRequest = ScanRequest | CollectRequest


def submit_payments(
    *, platform: Platform, requests: Sequence[PaymentRequest]
) -> list[Payment | PaymentError]:
    """Pay a batch of requests the way a switch handles concurrent ones, with one commit for
    all (group commit). The answers are those of the requests made one after another in this
    order — an earlier payment of the batch takes the balance, the limit, the order or the code
    a later one needed — but the batch costs the same few statements whatever its size: four
    reads for the front ends, one transaction recording every payment, one ledger batch and
    one transaction completing them (decision 0010). A request that cannot be carried out
    (nothing is recorded for it) answers its ``PaymentError`` in its place; the others go on.

    A request whose Idempotency-Key is bound already (a retry after a crash, or a twin) is
    answered with that payment, settled first if a crash left it ``created``; the others' keys
    are bound in the transaction that records their payments."""
    for run in range(RERUNS_MAX + 1):
        try:
            return _submit(platform, requests)
        except EffectConflictError:
            if run == RERUNS_MAX:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _submit(platform: Platform, requests: Sequence[PaymentRequest]) -> list[Payment | PaymentError]:
    bound = _bound_payments(platform, [r.idempotency for r in requests], EFFECT_PAYMENT)
    if bound:
        _settle_created(platform, sorted(set(bound.values())))
        done = _payments_by_id(platform, bound.values())
        fresh = [r for r in requests if r.idempotency not in bound]
        answers = iter(_submit(platform, fresh)) if fresh else iter(())
        return [
            done[bound[r.idempotency]] if r.idempotency in bound else next(answers)
            for r in requests
        ]
    lookups = _Lookups.load(platform, requests)
    fronts: list[_Attempt | PaymentError] = []
    for request in requests:
        try:
            if isinstance(request, ScanRequest):
                fronts.append(_scan(platform, lookups, request))
            else:
                fronts.append(_collect(platform, lookups, request))
        except PaymentError as exc:
            fronts.append(exc)
    paid = iter(_run(platform, [a for a in fronts if isinstance(a, _Attempt)]))
    return [a if isinstance(a, PaymentError) else next(paid) for a in fronts]


def _bound_payments(
    platform: Platform, tags: Sequence[IdempotencyTag | None], kind: str
) -> dict[IdempotencyTag, int]:
    """The payment each of ``tags`` is bound to already, by tag (one read; none without tags)."""
    if not any(tags):
        return {}
    with autocommit(platform.engine) as connection:
        found = find_effects(connection, tags)
    for tag, effect in found.items():
        invariant(effect.kind == kind, f"{tag} is bound to {effect}, not a {kind}")
    return {tag: effect.effect_id for tag, effect in found.items()}


def _one(answers: list[Payment | PaymentError]) -> Payment:
    [answer] = answers
    if isinstance(answer, PaymentError):
        raise answer
    return answer


def pay_scanned_code(
    *,
    platform: Platform,
    user_id: int,
    payload: str,
    wallet_card_id: int,
    amount: int | None = None,
    pin: str | None = None,
) -> Payment:
    """Pay one ``ScanRequest`` (a batch of one)."""
    request = ScanRequest(user_id, payload, wallet_card_id, amount, pin)
    return _one(submit_payments(platform=platform, requests=[request]))


def collect_with_code(
    *,
    platform: Platform,
    merchant_id: int,
    code: str,
    amount: int,
    terminal_code: str = "T0001",
    capture: bool = True,
    hold_seconds: int = HOLD_SECONDS_DEFAULT,
) -> Payment:
    """Collect one ``CollectRequest`` (a batch of one)."""
    request = CollectRequest(merchant_id, code, amount, terminal_code, capture, hold_seconds)
    return _one(submit_payments(platform=platform, requests=[request]))


# -- front ends ---------------------------------------------------------------------------------
def _read_scanned(payload: str) -> FlashpayCode | DeclineReason:
    try:
        code = read_flashpay_code(decode_mpm(payload))
    except (MpmDecodeError, MoneyError, QrError):
        return DeclineReason.INVALID_CODE
    return DeclineReason.FOREIGN_CODE if code is None else code


@dataclass(slots=True)
class _Lookups:
    """What a batch's front ends read, fetched for the whole batch in at most four queries:
    the merchants with their terminals, the numeric payment codes the network recorded, the
    dynamic orders and the paying cards. Each scanned payload and presented code is decoded
    once (a busy static code is scanned many times in a batch)."""

    scanned: dict[str, FlashpayCode | DeclineReason]
    presented: dict[str, codes.PaymentCode | codes.PaymentCodeError]  # CPM payloads
    recorded: dict[str, codes.PaymentCode]  # numeric codes, by their 19 digits
    by_code: dict[tuple[str, str], MerchantAndTerminal]
    by_id: dict[tuple[int, str], MerchantAndTerminal]
    orders: dict[tuple[int, str], Order]
    by_card: dict[int, Payer]
    by_token: dict[str, Payer]

    @classmethod
    def load(cls, platform: Platform, requests: Sequence[PaymentRequest]) -> _Lookups:
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
        recorded = _recorded_codes(platform, numerics)
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


def _scan(platform: Platform, lookups: _Lookups, request: ScanRequest) -> _Attempt:
    payer = lookups.by_card.get(request.wallet_card_id)
    if payer is None or payer.user_id != request.user_id:
        raise PaymentError("not_found", "no such card in this wallet", status=404)
    amount = request.amount
    if amount is not None and not 0 < amount <= AMOUNT_MAX:
        raise PaymentError("invalid_amount", "the amount is a positive number of fen")
    attempt = _Attempt(
        kind=PaymentKind.MPM_STATIC, amount=amount or 0, payer=payer, pin=request.pin,
        idempotency=request.idempotency,
    )  # fmt: skip
    code = lookups.scanned[request.payload]
    if isinstance(code, DeclineReason):
        attempt.reason = code
        return attempt
    merchant, terminal = lookups.by_code[(code.merchant_id, code.terminal_id)]
    if merchant is None or terminal is None or merchant.status != "active":
        attempt.reason = DeclineReason.MERCHANT_NOT_FOUND
        return attempt
    attempt.merchant, attempt.terminal = merchant, terminal
    if code.dynamic:
        attempt.kind = PaymentKind.MPM_DYNAMIC
        order = lookups.orders.get((merchant.id, code.bill_number)) if code.bill_number else None
        if order is None or code.amount is None or code.amount.amount_minor != order.amount:
            attempt.reason = DeclineReason.ORDER_NOT_FOUND
            return attempt
        if amount is not None and amount != order.amount:
            raise PaymentError("amount_mismatch", "a dynamic code carries its own amount")
        attempt.amount, attempt.order_id = order.amount, order.id
        attempt.bill_number = order.bill_number
        attempt.order_expires_at_ns = order.expires_at_ns
        if order.expires_at_ns <= platform.clock.now_ns():
            attempt.reason = DeclineReason.ORDER_EXPIRED
    elif amount is None:
        raise PaymentError("amount_required", "a static code needs the amount to pay")
    return attempt


def _collect(platform: Platform, lookups: _Lookups, request: CollectRequest) -> _Attempt:
    merchant, terminal = lookups.by_id[(request.merchant_id, request.terminal_code)]
    if merchant is None:
        raise PaymentError("not_found", "no such merchant", status=404)
    if terminal is None:
        raise PaymentError("unknown_terminal", "no such terminal at this merchant")
    if not 0 < request.amount <= AMOUNT_MAX:
        raise PaymentError("invalid_amount", "the amount is a positive number of fen")
    if not 60 <= request.hold_seconds <= HOLD_SECONDS_MAX:
        raise PaymentError("invalid_hold", "a hold lasts 60 s to 7 days")
    attempt = _Attempt(kind=PaymentKind.CPM, amount=request.amount, merchant=merchant,
                       terminal=terminal, two_phase=not request.capture,
                       hold_seconds=request.hold_seconds,
                       idempotency=request.idempotency)  # fmt: skip
    text = request.code.strip()
    now_s = platform.clock.now_ns() // NS_PER_SECOND
    master = platform.keys.payment_code_master
    try:
        if text.isdigit():
            digits = codes.parse_numeric_code(text)
            presented = lookups.recorded.get(digits)
            if presented is None:
                attempt.reason = DeclineReason.CODE_INVALID
                return attempt
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
        attempt.reason = (
            DeclineReason.FOREIGN_CODE
            if exc.reason is codes.CodeDecline.FOREIGN
            else DeclineReason.INVALID_CODE
        )
        return attempt
    if check is not None:
        attempt.reason = {
            codes.CodeDecline.EXPIRED: DeclineReason.CODE_EXPIRED,
            codes.CodeDecline.NOT_YET_VALID: DeclineReason.CODE_INVALID,
        }.get(check, DeclineReason.CODE_INVALID)
    attempt.payer = lookups.by_token.get(presented.token)
    if attempt.payer is None and attempt.reason is None:
        attempt.reason = DeclineReason.CODE_INVALID  # the card was unbound since
    attempt.code_key = (presented.token, presented.atc)
    return attempt


def issue_codes(
    *, platform: Platform, requests: Sequence[tuple[int, int]]
) -> list[codes.IssuedCode | PaymentError]:
    """One-time payment codes (valid 60 s) for a batch of (user id, wallet card id): each the
    next counter of its card's token, recorded so the network can find its numeric form and
    refuse a second use — one transaction and two statements for the batch. A card that is not
    in the user's wallet answers a 404 ``PaymentError`` in its place."""
    by_card, _ = payers(platform=platform, wallet_card_ids={card for _, card in requests})
    owners: list[Payer | None] = []
    wanted: Counter[str] = Counter()
    for user_id, wallet_card_id in requests:
        payer = by_card.get(wallet_card_id)
        if payer is not None and payer.user_id != user_id:
            payer = None
        owners.append(payer)
        if payer is not None:
            wanted[payer.token] += 1
    now_s = platform.clock.now_ns() // NS_PER_SECOND
    answers: list[codes.IssuedCode | PaymentError] = []
    rows = []
    with platform.engine.begin() as connection:
        # Each token's counter moves once by its count in the batch (a token appears once per
        # statement: an upsert may not touch a row twice); its codes take the values before.
        insert = (postgresql if connection.dialect.name == "postgresql" else sqlite).insert
        atc: dict[str, int] = {}
        if wanted:
            statement = insert(token_counters)
            statement = statement.on_conflict_do_update(
                index_elements=[token_counters.c.token],
                set_={"atc": token_counters.c.atc + statement.excluded.atc},
            ).returning(token_counters.c.token, token_counters.c.atc)
            # executemany of one cached statement (SQLAlchemy's insertmanyvalues), not a
            # multi-row VALUES that would be compiled anew for every batch size.
            counted = [{"token": t, "atc": n} for t, n in sorted(wanted.items())]
            for token, last in connection.execute(statement, counted):
                atc[str(token)] = int(last) - wanted[str(token)]
        for (user_id, wallet_card_id), payer in zip(requests, owners, strict=True):
            if payer is None:
                answers.append(PaymentError("not_found", "no such card in this wallet", 404))
                continue
            atc[payer.token] += 1
            issued = codes.issue_payment_code(
                token=payer.token,
                token_expiry=payer.card.expiry,
                key=codes.token_key(platform.keys.payment_code_master, payer.token),
                lookup_key=platform.keys.payment_code_lookup,
                atc=atc[payer.token] % 0x10000,
                now_s=now_s,
                credit=payer.card.card_type is CardType.CREDIT,
            )
            answers.append(issued)
            rows.append({
                "token": payer.token, "atc": issued.code.atc, "numeric": issued.numeric,
                "user_id": user_id, "wallet_card_id": wallet_card_id, "issued_at": now_s,
                "key_version": 1, "unpredictable": issued.code.unpredictable_number,
                "cryptogram": issued.code.cryptogram,
                "credit": issued.code.aid == codes.AID_CREDIT, "used_at_ns": None,
                "payment_id": None,
            })  # fmt: skip
        if rows:
            connection.execute(payment_codes.insert(), rows)
    return answers


def issue_code(*, platform: Platform, user_id: int, wallet_card_id: int) -> codes.IssuedCode:
    """One payment code (a batch of one; see ``issue_codes``)."""
    [answer] = issue_codes(platform=platform, requests=[(user_id, wallet_card_id)])
    if isinstance(answer, PaymentError):
        raise answer
    return answer


def _recorded_codes(platform: Platform, numerics: Collection[str]) -> dict[str, codes.PaymentCode]:
    """The recorded payment codes behind numeric codes, by their digits, in one query."""
    if not numerics:
        return {}
    with autocommit(platform.engine) as connection:
        rows = connection.execute(
            sa.select(payment_codes, cards.c.expiry)
            .join(wallet_cards, wallet_cards.c.token == payment_codes.c.token)
            .join(cards, cards.c.id == wallet_cards.c.card_id)
            .where(payment_codes.c.numeric.in_(sorted(numerics)))
        ).all()
    return {
        str(row.numeric): codes.PaymentCode(
            token=str(row.token),
            token_expiry=str(row.expiry),
            aid=codes.AID_CREDIT if row.credit else codes.AID_DEBIT,
            atc=int(row.atc),
            unpredictable_number=bytes(row.unpredictable),
            issued_at=int(row.issued_at),
            key_version=int(row.key_version),
            cryptogram=bytes(row.cryptogram),
        )
        for row in rows
    }


# -- the pipeline -----------------------------------------------------------------------------
def _verify(platform: Platform, a: _Attempt, pin: PinState) -> PinCheck | None:
    """The PIN verdict against the user's PIN state ``pin`` when a PIN was given (``None``
    otherwise); sets a decline reason."""
    payer = a.payer
    assert payer is not None
    verdict: PinCheck | None = None
    if a.pin is not None:
        verdict = check_pin(platform=platform, state=pin, pin=a.pin)
        if verdict is not PinCheck.OK and a.reason is None:
            a.reason = DeclineReason(verdict.value)
    elif a.amount > payer.free_per_payment and a.reason is None:
        a.reason = DeclineReason.PIN_REQUIRED
    if a.reason is None:
        card = payer.card
        if payer.wallet_status is WalletCardStatus.FROZEN or card.status is CardStatus.FROZEN:
            a.reason = DeclineReason.CARD_FROZEN
        elif card.status is CardStatus.CLOSED:
            a.reason = DeclineReason.CARD_CLOSED
        elif is_expired(card.expiry, platform.clock.now_ns()):
            a.reason = DeclineReason.CARD_EXPIRED
    return verdict


def _limits(a: _Attempt, pin_ok: bool) -> dict[str, int]:
    payer = a.payer
    assert payer is not None
    scopes = {
        f"qr:user:{payer.user_id}": payer.qr_daily_limit,
        f"card:{payer.card.id}": limits.DAILY_PER_CARD_MAX,
    }
    if not pin_ok:
        scopes[f"free:user:{payer.user_id}"] = FREE_DAILY_MAX
    if a.kind is PaymentKind.MPM_STATIC:
        scopes[f"static:user:{payer.user_id}"] = STATIC_DAILY_MAX
    return scopes


@dataclass(frozen=True, slots=True)
class _Record:
    """A payment as its record's transaction wrote it."""

    id: int
    attempt: _Attempt
    salt: bytes
    scopes: Mapping[str, int]
    pin_ok: bool


def _run(platform: Platform, attempts: list[_Attempt]) -> list[Payment]:
    """Verify, record, post and complete the attempts of a batch; their answers, in order."""
    if not attempts:
        return []
    now = platform.clock.now_ns()
    # PIN tries count one after another, as ``record_pin_check`` writes them: a right PIN
    # clears the failures, the fifth wrong one in a row locks the PIN for the later requests.
    pins: dict[int, PinState] = {}
    before: list[PinState | None] = []
    verdicts: list[PinCheck | None] = []
    for a in attempts:
        state = None if a.payer is None else pins.get(a.payer.user_id, a.payer.pin)
        verdict = None if a.payer is None or state is None else _verify(platform, a, state)
        before.append(state)
        verdicts.append(verdict)
        if state is not None and verdict is not None:
            pins[state.user_id] = pin_state_after(state, verdict, now)
    day = limits.beijing_day(now)
    records = [
        _Record(new_id(), a, secrets.token_bytes(16),
                _limits(a, v is PinCheck.OK) if a.payer is not None else {}, v is PinCheck.OK)
        for a, v in zip(attempts, verdicts, strict=True)
    ]  # fmt: skip
    with platform.engine.begin() as connection:
        bind_effects(connection, {
            r.attempt.idempotency: Effect(EFFECT_PAYMENT, r.id)
            for r in records if r.attempt.idempotency is not None
        }, now_ns=now)  # fmt: skip
        for state, verdict in zip(before, verdicts, strict=True):
            if state is not None and verdict is not None:
                record_pin_check(platform=platform, connection=connection, state=state,
                                 verdict=verdict)  # fmt: skip
        _claim(connection, now, day, records)
        connection.execute(payments.insert(), [_payment_row(r, now, day) for r in records])
        connection.execute(
            payment_events.insert(),
            [_event_row(r.id, 1, _status(r.attempt), r.attempt.amount, now,
                        r.attempt.reason and r.attempt.reason.value) for r in records],
        )  # fmt: skip
    going = [r for r in records if r.attempt.reason is None]
    outcomes = _post(platform, day, going) if going else {}
    declined = _Outcome(PaymentStatus.DECLINED, None, None, 0, None, now)
    # The answers from what we know: no read-back of the rows just written.
    return [_answer(r, outcomes.get(r.id, declined), now) for r in records]


def _status(a: _Attempt) -> PaymentStatus:
    return PaymentStatus.DECLINED if a.reason is not None else PaymentStatus.CREATED


def _payment_row(r: _Record, now: int, day: str) -> dict[str, object]:
    a, payer = r.attempt, r.attempt.payer
    return {
        "id": r.id, "kind": a.kind.value,
        "user_id": payer.user_id if payer else None,
        "wallet_card_id": payer.wallet_card_id if payer else None,
        "card_id": payer.card.id if payer else None,
        "merchant_id": a.merchant.id if a.merchant else None,
        "terminal_id": a.terminal.id if a.terminal else None,
        "order_id": a.order_id, "amount": a.amount, "captured": 0, "refunded": 0,
        "currency": "CNY", "status": _status(a).value,
        "decline_reason": a.reason and a.reason.value, "voucher": None,
        "pin_verified": r.pin_ok, "two_phase": a.two_phase, "hold_expires_at_ns": None,
        "commitment_salt": r.salt, "day": day, "created_at_ns": now, "updated_at_ns": now,
    }  # fmt: skip


def _answer(r: _Record, outcome: _Outcome, now: int) -> Payment:
    a, payer = r.attempt, r.attempt.payer
    return Payment(
        id=r.id,
        kind=a.kind,
        user_id=payer.user_id if payer else None,
        wallet_card_id=payer.wallet_card_id if payer else None,
        card_display=payer.card.masked if payer else None,
        merchant_id=a.merchant.id if a.merchant else None,
        merchant_name=a.merchant.display_name if a.merchant else None,
        terminal=a.terminal.code if a.terminal else None,
        order_id=a.order_id,
        bill_number=a.bill_number,
        amount=a.amount,
        captured=outcome.captured,
        refunded=0,
        currency="CNY",
        status=outcome.status,
        decline_reason=outcome.reason or a.reason,
        voucher=outcome.voucher,
        pin_verified=r.pin_ok,
        two_phase=a.two_phase,
        hold_expires_at_ns=outcome.hold_expires_at_ns,
        created_at_ns=now,
        updated_at_ns=outcome.updated_at_ns,
    )


_PAY_ORDER = (
    qr_orders.update()
    .where(qr_orders.c.id == sa.bindparam("o"))
    .values(status="paid", payment_id=sa.bindparam("p"))
)
_USE_CODE = (
    payment_codes.update()
    .where(payment_codes.c.token == sa.bindparam("t"), payment_codes.c.atc == sa.bindparam("c"))
    .values(used_at_ns=sa.bindparam("at"), payment_id=sa.bindparam("p"))
)


def _claim(connection: sa.Connection, now: int, day: str, records: Sequence[_Record]) -> None:
    """The checks that need the database, for the records still going, one after another in
    check order — a dynamic order not yet paid (``order_already_paid``), a payment code not
    yet used (``code_already_used``), the limits (``limit_exceeded``) — so an earlier payment
    of the batch takes what a later one needed; then what they took is written. The limit
    counters are locked first: their first statement is a write, so on SQLite the reads below
    run under the database's write lock; on PostgreSQL the orders and codes are read ``FOR
    UPDATE``. A payment declined for its limits leaves the order open (the user may pay it
    with another card) but uses its code (a code is shown once)."""
    going = [r for r in records if r.attempt.reason is None]
    if not going:
        return
    counters = limits.Counters(connection, day=day, scopes=(s for r in going for s in r.scopes))
    order_ids = sorted({r.attempt.order_id for r in going if r.attempt.order_id is not None})
    open_orders = set()
    if order_ids:
        open_orders = set(connection.execute(
            sa.select(qr_orders.c.id)
            .where(qr_orders.c.id.in_(order_ids), qr_orders.c.status == "open")
            .with_for_update()
        ).scalars())  # fmt: skip
    code_keys = sorted({r.attempt.code_key for r in going if r.attempt.code_key is not None})
    unused_codes = set()
    if code_keys:
        key = sa.tuple_(payment_codes.c.token, payment_codes.c.atc)
        unused_codes = {(str(t), int(c)) for t, c in connection.execute(
            sa.select(payment_codes.c.token, payment_codes.c.atc)
            .where(key.in_(code_keys), payment_codes.c.used_at_ns.is_(None))
            .with_for_update()
        )}  # fmt: skip
    paid_orders, used_codes = [], []
    for r in going:
        a = r.attempt
        if a.order_id is not None and a.order_id not in open_orders:
            a.reason = DeclineReason.ORDER_ALREADY_PAID
            continue
        if a.code_key is not None:
            if a.code_key not in unused_codes:
                a.reason = DeclineReason.CODE_ALREADY_USED
                continue
            unused_codes.discard(a.code_key)
            used_codes.append({"t": a.code_key[0], "c": a.code_key[1], "at": now, "p": r.id})
        if not counters.take(limits.Reservation(a.amount, tuple(sorted(r.scopes.items())))):
            a.reason = DeclineReason.LIMIT_EXCEEDED
            continue
        if a.order_id is not None:
            open_orders.discard(a.order_id)
            paid_orders.append({"o": a.order_id, "p": r.id})
    counters.write()
    if paid_orders:
        connection.execute(_PAY_ORDER, paid_orders)
    if used_codes:
        connection.execute(_USE_CODE, used_codes)


def _event_row(
    payment_id: int,
    seq: int,
    status: PaymentStatus,
    amount: int,
    at_ns: int,
    detail: str | None = None,
) -> dict[str, object]:
    return {
        "payment_id": payment_id,
        "seq": seq,
        "status": status.value,
        "amount": amount,
        "at_ns": at_ns,
        "detail": detail,
    }


def _event(
    connection: sa.Connection,
    payment_id: int,
    seq: int,
    status: PaymentStatus,
    amount: int,
    at_ns: int,
    detail: str | None = None,
) -> None:
    connection.execute(
        payment_events.insert(), _event_row(payment_id, seq, status, amount, at_ns, detail)
    )


def _next_seq(connection: sa.Connection, payment_id: int) -> int:
    last = connection.execute(
        sa.select(sa.func.max(payment_events.c.seq)).where(
            payment_events.c.payment_id == payment_id
        )
    ).scalar()
    return int(last or 0) + 1


def purchase_legs(
    platform: Platform, card: Card, merchant: Merchant, amount: int
) -> list[tuple[int, int, int]]:
    """(debit, credit, amount) of the six §4 legs for ``amount``, zero legs included."""
    fees: FeeSplit = merchant.fees
    interchange, network_fee, acquirer_income, merchant_net = fees.split(amount)
    issuer = institution_code(platform=platform, institution_id=card.issuer_id)
    acquirer = institution_code(platform=platform, institution_id=merchant.acquirer_id)
    network = network_code(platform=platform)
    a = AccountCode
    card_account = card.ledger_account_id
    to_network = amount - interchange
    receivable = institution_account_id(network, a.ISSUER_RECEIVABLE, issuer)
    acquirer_receivable = institution_account_id(acquirer, a.ACQUIRER_NETWORK_RECEIVABLE)
    return [
        (card_account, institution_account_id(issuer, a.INTERCHANGE_INCOME), interchange),
        (card_account, institution_account_id(issuer, a.NETWORK_PAYABLE), to_network),
        (receivable, institution_account_id(network, a.ACQUIRER_PAYABLE, acquirer),
         to_network - network_fee),
        (receivable, institution_account_id(network, a.FEE_INCOME), network_fee),
        (acquirer_receivable, merchant.ledger_account_id, merchant_net),
        (acquirer_receivable, institution_account_id(acquirer, a.MDR_INCOME), acquirer_income),
    ]  # fmt: skip


def _transfers(
    legs: list[tuple[int, int, int]],
    ids: list[int],
    code: TransferCode,
    payment_id: int,
    *,
    flags: TransferFlags = TransferFlags.NONE,
    timeout: int = 0,
    linked_tail: bool = False,
) -> list[Transfer]:
    kept = [(n, leg) for n, leg in enumerate(legs) if leg[2] > 0]
    out = []
    for i, (n, (debit, credit, amount)) in enumerate(kept):
        last = i == len(kept) - 1
        link = TransferFlags.LINKED if (not last or linked_tail) else TransferFlags.NONE
        out.append(
            Transfer(
                ids[n],
                debit,
                credit,
                amount,
                LEDGER_CNY,
                code,
                flags=flags | link,
                timeout_seconds=timeout,
                user_data_64=payment_id,
            )
        )
    return out


def _ids(payment_id: int, what: str, count: int = 6) -> list[int]:
    return [derive_id("flashpay.payment", f"{payment_id}:{what}:{n}") for n in range(count)]


def chain_id(platform: Platform, payment: Payment) -> int | None:
    """The ledger chain that paid the merchant (the audit log's key: the timestamp of the
    chain's first transfer), ``None`` before anything was posted."""
    what = "void" if payment.two_phase else "purchase"
    found = platform.ledger.lookup_transfers(_ids(payment.id, what))
    return min((t.timestamp for t in found), default=None)


def _voucher(day: str, payment_id: int) -> str:
    return day.replace("-", "") + f"{payment_id:019d}"


def _commitment(salt: bytes, payment_id: int, what: str, amount: int) -> bytes:
    record = f"flashpay.payment.v1|{payment_id}|{what}|{amount}|CNY".encode()
    return hashlib.sha256(salt + record).digest()


@dataclass(frozen=True, slots=True)
class _Outcome:
    status: PaymentStatus
    reason: DeclineReason | None
    voucher: str | None
    captured: int
    hold_expires_at_ns: int | None
    updated_at_ns: int


_COMPLETE = (
    payments.update()
    .where(payments.c.id == sa.bindparam("i"))
    .values(
        status=sa.bindparam("s"),
        voucher=sa.bindparam("v"),
        captured=sa.bindparam("c"),
        hold_expires_at_ns=sa.bindparam("h"),
    )
)
_DECLINE = (
    payments.update()
    .where(payments.c.id == sa.bindparam("i"))
    .values(status=PaymentStatus.DECLINED.value, decline_reason=sa.bindparam("r"))
)
_REOPEN_ORDER = (
    qr_orders.update()
    .where(qr_orders.c.id == sa.bindparam("o"), qr_orders.c.payment_id == sa.bindparam("p"))
    .values(status="open", payment_id=None)
)


def _post(platform: Platform, day: str, going: Sequence[_Record]) -> dict[int, _Outcome]:
    """Post the chains of a batch's recorded payments and complete (or decline) the records in
    one transaction; what each became, by payment id."""
    chains: list[list[Transfer]] = []
    commitments: dict[int, bytes] = {}
    for r in going:
        a = r.attempt
        assert a.payer is not None
        assert a.merchant is not None
        legs = purchase_legs(platform, a.payer.card, a.merchant, a.amount)
        if a.two_phase:
            chain = _transfers(legs, _ids(r.id, "hold"), TransferCode.PURCHASE_HOLD, r.id,
                               flags=TransferFlags.PENDING, timeout=a.hold_seconds)  # fmt: skip
        else:
            chain = _transfers(legs, _ids(r.id, "purchase"), TransferCode.PURCHASE, r.id)
        chains.append(chain)
        commitments[chain[0].id] = _commitment(r.salt, r.id, "purchase", a.amount)
    results = _post_chains(platform, chains, commitments)
    now = platform.clock.now_ns()
    outcomes: dict[int, _Outcome] = {}
    for r, chain_results in zip(going, results, strict=True):
        a = r.attempt
        if all(x in (CreateTransferResult.OK, CreateTransferResult.EXISTS) for x in chain_results):
            status = PaymentStatus.AUTHORIZED if a.two_phase else PaymentStatus.COMPLETED
            hold_end = now + a.hold_seconds * NS_PER_SECOND if a.two_phase else None
            captured = 0 if a.two_phase else a.amount
            outcomes[r.id] = _Outcome(status, None, _voucher(day, r.id), captured, hold_end, now)
            continue
        first = next(x for x in chain_results if x is not CreateTransferResult.LINKED_EVENT_FAILED)
        if first in (CreateTransferResult.EXCEEDS_CREDITS, CreateTransferResult.EXCEEDS_DEBITS):
            reason = DeclineReason.INSUFFICIENT_FUNDS
        else:
            logger.error("payment %s: the ledger refused the chain: %s", r.id, chain_results)
            reason = DeclineReason.PROCESSING_ERROR
        outcomes[r.id] = _Outcome(PaymentStatus.DECLINED, reason, None, 0, None, now)
    with platform.engine.begin() as connection:
        # Only records still ``created`` are settled here: one a recovery settled meanwhile was
        # settled from the same ledger state, and its limits were given back there.
        mine = set(connection.execute(
            payments.update()
            .where(payments.c.id.in_([r.id for r in going]), payments.c.status == "created")
            .values(updated_at_ns=now)
            .returning(payments.c.id)
        ).scalars())  # fmt: skip
        settled = [r for r in going if r.id in mine]
        done = [(r, outcomes[r.id]) for r in settled if outcomes[r.id].reason is None]
        refused = [(r, outcomes[r.id]) for r in settled if outcomes[r.id].reason is not None]
        if done:
            connection.execute(_COMPLETE, [
                {"i": r.id, "s": o.status.value, "v": o.voucher, "c": o.captured,
                 "h": o.hold_expires_at_ns} for r, o in done
            ])  # fmt: skip
        if refused:
            connection.execute(
                _DECLINE, [{"i": r.id, "r": o.reason and o.reason.value} for r, o in refused]
            )
            limits.release_many(connection, day=day, given_back=[
                (r.attempt.amount, list(r.scopes)) for r, _ in refused
            ])  # fmt: skip
            reopened = [
                {"o": r.attempt.order_id, "p": r.id}
                for r, _ in refused
                if r.attempt.order_id is not None
            ]
            if reopened:  # the order can be paid again (with another card)
                connection.execute(_REOPEN_ORDER, reopened)
        if settled:
            connection.execute(payment_events.insert(), [
                _event_row(r.id, 2, o.status, r.attempt.amount, now, o.reason and o.reason.value)
                for r, o in done + refused
            ])  # fmt: skip
    return outcomes


def _post_chains(
    platform: Platform, chains: Sequence[list[Transfer]], commitments: Mapping[int, bytes]
) -> list[list[CreateTransferResult]]:
    """Each chain's results, posting as few ledger batches as the ledger's batch size allows
    (a chain is never split across two)."""
    results: list[list[CreateTransferResult]] = []
    batch: list[list[Transfer]] = []

    def flush() -> None:
        posted = platform.ledger.create_transfers(
            [t for chain in batch for t in chain],
            commitments={chain[0].id: commitments[chain[0].id] for chain in batch},
        )
        start = 0
        for chain in batch:
            results.append(posted[start : start + len(chain)])
            start += len(chain)
        batch.clear()

    size = 0
    for chain in chains:
        if size + len(chain) > BATCH_EVENTS_MAX:
            flush()
            size = 0
        batch.append(chain)
        size += len(chain)
    if batch:
        flush()
    return results


def _decline_created(
    connection: sa.Connection,
    payment_id: int,
    amount: int,
    reason: DeclineReason,
    now: int,
    day: str,
    scopes: Iterable[str],
    order_id: int | None,
) -> None:
    """Decline a ``created`` payment and give back what its record's transaction took (limits,
    the order) — only if this UPDATE settled it, so a racing recovery cannot give twice."""
    settled = connection.execute(
        payments.update()
        .where(payments.c.id == payment_id, payments.c.status == "created")
        .values(status=PaymentStatus.DECLINED.value, decline_reason=reason.value, updated_at_ns=now)
    ).rowcount
    if settled != 1:
        return
    _event(connection, payment_id, _next_seq(connection, payment_id), PaymentStatus.DECLINED,
           amount, now, reason.value)  # fmt: skip
    limits.release_many(connection, day=day, given_back=[(amount, list(scopes))])
    if order_id is not None:  # the order can be paid again (with another card)
        connection.execute(
            qr_orders.update()
            .where(qr_orders.c.id == order_id, qr_orders.c.payment_id == payment_id)
            .values(status="open", payment_id=None)
        )


def recover_payments(*, platform: Platform, older_than_seconds: int = 60) -> int:
    """Settle payments a dead process left ``created`` (after their record, before or after the
    ledger post): behind a fence on their ledger ids (``flashpay.payments.fence``), completed
    (or authorized for a hold) with their voucher if their chain posted first, else declined
    ``processing_error`` with their limits and order given back — and refunds left ``created``
    the same way (``_recover_refunds``). Safe to run at any time, from any process, even beside
    a request still in flight; the age only spares payments that are merely slow. Returns how
    many payments and refunds it settled."""
    cutoff = platform.clock.now_ns() - older_than_seconds * NS_PER_SECOND
    with autocommit(platform.engine) as connection:
        ids = [int(i) for i in connection.execute(
            sa.select(payments.c.id).where(
                payments.c.status == "created", payments.c.created_at_ns < cutoff
            )
        ).scalars()]  # fmt: skip
    return _settle_created(platform, ids) + _recover_refunds(platform, cutoff)


def _settle_created(platform: Platform, payment_ids: Sequence[int]) -> int:
    """Settle those of ``payment_ids`` still ``created``, behind a fence; how many there were."""
    if not payment_ids:
        return 0
    with autocommit(platform.engine) as connection:
        rows = connection.execute(
            sa.select(payments).where(
                payments.c.id.in_(sorted(payment_ids)), payments.c.status == "created"
            )
        ).all()
    if not rows:
        return 0
    posted = fence(platform, [
        (int(row.id), _ids(int(row.id), "hold" if row.two_phase else "purchase")) for row in rows
    ])  # fmt: skip
    for row in rows:
        payment_id, amount = int(row.id), int(row.amount)
        now = platform.clock.now_ns()
        with platform.engine.begin() as connection:
            if payment_id in posted:
                hold = platform.ledger.lookup_transfers(_ids(payment_id, "hold")[:1]) if (
                    row.two_phase) else []  # fmt: skip
                status = PaymentStatus.AUTHORIZED if row.two_phase else PaymentStatus.COMPLETED
                hold_end = (
                    hold[0].timestamp + hold[0].timeout_seconds * NS_PER_SECOND if hold else None
                )
                settled = connection.execute(
                    payments.update()
                    .where(payments.c.id == payment_id, payments.c.status == "created")
                    .values(
                        status=status.value,
                        voucher=_voucher(row.day, payment_id),
                        captured=0 if row.two_phase else amount,
                        updated_at_ns=now,
                        hold_expires_at_ns=hold_end,
                    )
                ).rowcount
                if settled == 1:
                    _event(connection, payment_id, _next_seq(connection, payment_id), status,
                           amount, now, "recovered")  # fmt: skip
                continue
            scopes = [f"qr:user:{row.user_id}", f"card:{row.card_id}"]
            if not row.pin_verified:
                scopes.append(f"free:user:{row.user_id}")
            if row.kind == PaymentKind.MPM_STATIC.value:
                scopes.append(f"static:user:{row.user_id}")
            _decline_created(connection, payment_id, amount, DeclineReason.PROCESSING_ERROR,
                             now, row.day, scopes, row.order_id)  # fmt: skip
    return len(rows)


# -- after the payment: capture, void, refund ---------------------------------------------------
def _payments_query() -> sa.Select[tuple[object, ...]]:
    """Payments with what a reader shows of them: merchant name, terminal, bill, masked card."""
    return (
        sa.select(
            payments,
            merchants.c.display_name,
            terminals.c.code.label("terminal_code"),
            qr_orders.c.bill_number,
            cards.c.pan_first6,
            cards.c.pan_last4,
            cards.c.pan_length,
        )
        .outerjoin(merchants, merchants.c.id == payments.c.merchant_id)
        .outerjoin(terminals, terminals.c.id == payments.c.terminal_id)
        .outerjoin(qr_orders, qr_orders.c.id == payments.c.order_id)
        .outerjoin(cards, cards.c.id == payments.c.card_id)
    )


def _payment(row: sa.Row[tuple[object, ...]]) -> Payment:
    m = row._mapping
    display = (
        f"{m['pan_first6']}{'*' * (int(m['pan_length']) - 10)}{m['pan_last4']}"
        if m["pan_first6"] is not None
        else None
    )
    reason = m["decline_reason"]
    return Payment(
        id=int(m["id"]), kind=PaymentKind(m["kind"]),
        user_id=m["user_id"], wallet_card_id=m["wallet_card_id"], card_display=display,
        merchant_id=m["merchant_id"], merchant_name=m["display_name"],
        terminal=m["terminal_code"], order_id=m["order_id"], bill_number=m["bill_number"],
        amount=int(m["amount"]), captured=int(m["captured"]), refunded=int(m["refunded"]),
        currency=str(m["currency"]), status=PaymentStatus(m["status"]),
        decline_reason=None if reason is None else DeclineReason(reason),
        voucher=m["voucher"], pin_verified=bool(m["pin_verified"]),
        two_phase=bool(m["two_phase"]), hold_expires_at_ns=m["hold_expires_at_ns"],
        created_at_ns=int(m["created_at_ns"]), updated_at_ns=int(m["updated_at_ns"]),
    )  # fmt: skip


def _payments_by_id(platform: Platform, ids: Collection[int]) -> dict[int, Payment]:
    with autocommit(platform.engine) as connection:
        rows = connection.execute(_payments_query().where(payments.c.id.in_(sorted(ids))))
        return {p.id: p for p in map(_payment, rows)}


def _load(platform: Platform, payment_id: int) -> Payment | None:
    with autocommit(platform.engine) as connection:
        row = connection.execute(_payments_query().where(payments.c.id == payment_id)).first()
    return None if row is None else _payment(row)


def get_payment(
    *, platform: Platform, payment_id: int, user_id: int | None = None,
    merchant_id: int | None = None,
) -> Payment | None:  # fmt: skip
    """A payment its payer or its merchant may see; ``None`` for anyone else (a 404)."""
    found = _load(platform, payment_id)
    if found is None:
        return None
    if user_id is not None and found.user_id == user_id:
        return _expire_if_due(platform, found)
    if merchant_id is not None and found.merchant_id == merchant_id:
        return _expire_if_due(platform, found)
    return None


def _expire_if_due(platform: Platform, payment: Payment) -> Payment:
    """An authorization past its hold is expired (the ledger has released the hold)."""
    now = platform.clock.now_ns()
    if (
        payment.status is PaymentStatus.AUTHORIZED
        and payment.hold_expires_at_ns is not None
        and payment.hold_expires_at_ns <= now
    ):
        platform.ledger.expire_pending_transfers()
        with platform.engine.begin() as connection:
            updated = connection.execute(
                payments.update()
                .where(payments.c.id == payment.id, payments.c.status == "authorized")
                .values(status=PaymentStatus.EXPIRED.value, updated_at_ns=now)
            ).rowcount
            if updated:
                _event(connection, payment.id, _next_seq(connection, payment.id),
                       PaymentStatus.EXPIRED, payment.amount, now)  # fmt: skip
        reloaded = _load(platform, payment.id)
        assert reloaded is not None
        return reloaded
    return payment


def history(*, platform: Platform, payment_id: int) -> list[PaymentEvent]:
    with autocommit(platform.engine) as connection:
        rows = connection.execute(
            sa.select(payment_events)
            .where(payment_events.c.payment_id == payment_id)
            .order_by(payment_events.c.seq)
        ).all()
    return [
        PaymentEvent(int(r.seq), PaymentStatus(r.status), int(r.amount), int(r.at_ns), r.detail)
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class HoldSettlement:
    """A merchant settles one of its authorizations: captures ``amount`` (all or part), or
    voids the hold with ``amount=0``."""

    merchant_id: int
    payment_id: int
    amount: int
    idempotency: IdempotencyTag | None = None  # the caller's key, bound to the settlement


def settle_holds(
    *, platform: Platform, requests: Sequence[HoldSettlement]
) -> list[Payment | PaymentError]:
    """Capture or void a batch of authorizations (a car park's exits, an hotel's check-outs):
    each hold is voided and the captured amount posted as a purchase in one linked chain (both
    or neither), every chain in one ledger batch, the records in one transaction. A request
    that cannot be carried out answers its ``PaymentError`` in its place. A request whose
    Idempotency-Key is bound already is answered with its payment as it now is."""
    bound = _bound_payments(platform, [r.idempotency for r in requests], EFFECT_SETTLEMENT)
    if bound:
        done = _payments_by_id(platform, bound.values())
        fresh = [r for r in requests if r.idempotency not in bound]
        rest = iter(settle_holds(platform=platform, requests=fresh)) if fresh else iter(())
        return [
            done[bound[r.idempotency]] if r.idempotency in bound else next(rest) for r in requests
        ]
    ids = sorted({r.payment_id for r in requests})
    found = _payments_by_id(platform, ids)
    parts = _cards_and_salts(platform, ids)
    shops = get_merchants(
        platform=platform, merchant_ids={p.merchant_id for p in found.values() if p.merchant_id}
    )
    answers: list[Payment | PaymentError | None] = []
    going: list[tuple[int, Payment, Card, int]] = []  # (answer index, payment, card, amount)
    chains: list[list[Transfer]] = []
    commitments: dict[int, bytes] = {}
    taken: set[int] = set()
    for n, request in enumerate(requests):
        p = found.get(request.payment_id)
        if p is None or p.merchant_id != request.merchant_id:
            answers.append(PaymentError("not_found", "payment not found", status=404))
            continue
        if p.status is not PaymentStatus.AUTHORIZED or p.id in taken:
            status = "being settled" if p.id in taken else p.status.value
            answers.append(PaymentError("not_authorized", f"the payment is {status}", 409))
            continue
        if not 0 <= request.amount <= p.amount:
            answers.append(
                PaymentError("invalid_amount", "capture between ¥0.01 and the authorized amount")
            )
            continue
        taken.add(p.id)
        card, salt = parts[p.id]
        chain = _settlement_chain(platform, p, card, shops[request.merchant_id], request.amount)
        commitments[chain[0].id] = _commitment(salt, p.id, "capture", request.amount)
        chains.append(chain)
        going.append((n, p, card, request.amount))
        answers.append(None)
    settled: list[tuple[Payment, Card, int]] = []
    for (n, p, card, amount), results in zip(
        going, _post_chains(platform, chains, commitments), strict=True
    ):
        if all(r in (CreateTransferResult.OK, CreateTransferResult.EXISTS) for r in results):
            settled.append((p, card, amount))
        elif CreateTransferResult.PENDING_TRANSFER_EXPIRED in results:
            answers[n] = _expire_if_due(platform, p)
        else:
            refused = sorted(set(results))
            answers[n] = PaymentError("hold_not_settled", f"the ledger refused: {refused}", 409)
    now = platform.clock.now_ns()
    tags = {r.payment_id: r.idempotency for r in requests if r.idempotency is not None}
    done = _record_settlements(platform, settled, now, tags)
    for n, p, _, _ in going:
        if answers[n] is None:
            answers[n] = done[p.id]
    return [a for a in answers if a is not None]


def _settlement_chain(
    platform: Platform, p: Payment, card: Card, merchant: Merchant, amount: int
) -> list[Transfer]:
    """Void every leg of the hold, then post ``amount`` as a purchase; one linked chain."""
    hold_ids = _ids(p.id, "hold")
    held = purchase_legs(platform, card, merchant, p.amount)
    voids = [
        Transfer(derive_id("flashpay.payment", f"{p.id}:void:{n}"), 0, 0, 0, LEDGER_CNY,
                 TransferCode.PURCHASE_HOLD, flags=TransferFlags.VOID_PENDING_TRANSFER
                 | TransferFlags.LINKED, pending_id=hold_ids[n], user_data_64=p.id)
        for n, leg in enumerate(held) if leg[2] > 0
    ]  # fmt: skip
    posts = (
        _transfers(purchase_legs(platform, card, merchant, amount), _ids(p.id, "capture"),
                   TransferCode.PURCHASE, p.id)
        if amount else []
    )  # fmt: skip
    chain = voids + posts
    if not posts:
        last = chain[-1]
        chain[-1] = Transfer(last.id, 0, 0, 0, LEDGER_CNY, last.code,
                             flags=TransferFlags.VOID_PENDING_TRANSFER, pending_id=last.pending_id,
                             user_data_64=p.id)  # fmt: skip
    return chain


def _record_settlements(
    platform: Platform,
    settled: Sequence[tuple[Payment, Card, int]],
    now: int,
    tags: Mapping[int, IdempotencyTag],
) -> dict[int, Payment]:
    """Complete (or void) the records of posted settlements in one transaction, giving back
    the part of the limits a hold took and did not use, and binding the Idempotency-Key (in
    ``tags``, by payment id) of each one it settled; the payments as they now are."""
    if not settled:
        return {}
    with platform.engine.begin() as connection:
        mine = set(connection.execute(
            payments.update()
            .where(payments.c.id.in_([p.id for p, _, _ in settled]),
                   payments.c.status == PaymentStatus.AUTHORIZED.value)
            .values(updated_at_ns=now)
            .returning(payments.c.id)
        ).scalars())  # fmt: skip
        ours = [(p, card, amount) for p, card, amount in settled if p.id in mine]
        if not ours:
            return {p.id: p for p, _, _ in settled}
        bind_effects(connection, {
            tags[p.id]: Effect(EFFECT_SETTLEMENT, p.id) for p, _, _ in ours if p.id in tags
        }, now_ns=now)  # fmt: skip
        seqs = _next_seqs(connection, [p.id for p, _, _ in ours])
        connection.execute(_SETTLE, [
            {"i": p.id, "s": _settled_status(amount).value, "c": amount} for p, _, amount in ours
        ])  # fmt: skip
        connection.execute(payment_events.insert(), [
            _event_row(p.id, seqs[p.id], _settled_status(amount), amount, now)
            for p, _, amount in ours
        ])  # fmt: skip
        given_back = []
        for p, card, amount in ours:
            if amount < p.amount:  # the part of the limits the hold took and did not use
                assert p.user_id is not None
                scopes = [f"qr:user:{p.user_id}", f"card:{card.id}"]
                if not p.pin_verified:
                    scopes.append(f"free:user:{p.user_id}")
                given_back.append((limits.beijing_day(p.created_at_ns), p.amount - amount, scopes))
        for day in sorted({day for day, _, _ in given_back}):
            limits.release_many(connection, day=day, given_back=[
                (amount, scopes) for d, amount, scopes in given_back if d == day
            ])  # fmt: skip
    return {
        p.id: dataclasses.replace(
            p, status=_settled_status(amount), captured=amount, updated_at_ns=now
        )
        if p.id in mine
        else p
        for p, _, amount in settled
    }


def _settled_status(amount: int) -> PaymentStatus:
    return PaymentStatus.COMPLETED if amount else PaymentStatus.VOIDED


_SETTLE = (
    payments.update()
    .where(payments.c.id == sa.bindparam("i"))
    .values(status=sa.bindparam("s"), captured=sa.bindparam("c"))
)


def _next_numbers(
    connection: sa.Connection, table: sa.Table, payment_ids: Sequence[int], *, after: int = 0
) -> dict[int, int]:
    """Each payment's next ``seq`` in ``table`` (its history events, its refunds): one more than
    the highest, or ``after + 1`` for the first."""
    rows = connection.execute(
        sa.select(table.c.payment_id, sa.func.max(table.c.seq))
        .where(table.c.payment_id.in_(sorted(payment_ids)))
        .group_by(table.c.payment_id)
    )
    last = {int(payment_id): int(seq) for payment_id, seq in rows}
    return {payment_id: last.get(payment_id, after) + 1 for payment_id in payment_ids}


def _next_seqs(connection: sa.Connection, payment_ids: Sequence[int]) -> dict[int, int]:
    return _next_numbers(connection, payment_events, payment_ids)


def _settle_one(platform: Platform, request: HoldSettlement) -> Payment:
    [answer] = settle_holds(platform=platform, requests=[request])
    if isinstance(answer, PaymentError):
        raise answer
    return answer


def capture(
    *, platform: Platform, merchant_id: int, payment_id: int, amount: int,
    idempotency: IdempotencyTag | None = None,
) -> Payment:  # fmt: skip
    """Capture an authorization, all or part (see ``settle_holds``)."""
    if amount <= 0:
        raise PaymentError("invalid_amount", "capture between ¥0.01 and the authorized amount")
    return _settle_one(platform, HoldSettlement(merchant_id, payment_id, amount, idempotency))


def void(
    *, platform: Platform, merchant_id: int, payment_id: int,
    idempotency: IdempotencyTag | None = None,
) -> Payment:  # fmt: skip
    """Release an authorization's hold (see ``settle_holds``)."""
    return _settle_one(platform, HoldSettlement(merchant_id, payment_id, 0, idempotency))


@dataclass(frozen=True, slots=True)
class RefundRequest:
    """The merchant that was paid gives back ``amount`` of a completed payment."""

    merchant_id: int
    payment_id: int
    amount: int
    idempotency: IdempotencyTag | None = None  # the caller's key, bound to the refund


_REFUNDED = (
    payments.update().where(payments.c.id == sa.bindparam("i")).values(refunded=sa.bindparam("r"))
)
_REFUND_STATUS = (
    payments.update().where(payments.c.id == sa.bindparam("i")).values(status=sa.bindparam("s"))
)
_UNREFUND = (
    payments.update()
    .where(payments.c.id == sa.bindparam("i"))
    .values(refunded=payments.c.refunded - sa.bindparam("a"))
)


def refund_many(
    *, platform: Platform, requests: Sequence[RefundRequest]
) -> list[Payment | PaymentError]:
    """Refund a batch (a merchant's returns of the day, several merchants at once), each to the
    card it came from, as if one after another: several refunds of one payment add up to at
    most what was paid (``refund_exceeds_payment`` for the one that would pass it). The
    refunded totals are taken under the rows' locks in one transaction, every reversing chain
    goes in one ledger batch, and the records complete in one transaction; a refund the ledger
    refuses gives its amount back. A request that cannot be carried out answers its
    ``PaymentError`` in its place. A request whose Idempotency-Key is bound already is
    answered with its payment (its refund settled first if a crash left it ``created``)."""
    for run in range(RERUNS_MAX + 1):
        try:
            return _refund_many(platform, requests)
        except EffectConflictError:
            if run == RERUNS_MAX:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _refund_many(
    platform: Platform, requests: Sequence[RefundRequest]
) -> list[Payment | PaymentError]:
    bound = _bound_payments(platform, [r.idempotency for r in requests], EFFECT_REFUND)
    if bound:
        with autocommit(platform.engine) as connection:
            created = connection.execute(
                sa.select(payment_refunds.c.payment_id, payment_refunds.c.seq).where(
                    payment_refunds.c.payment_id.in_(sorted(set(bound.values()))),
                    payment_refunds.c.status == "created",
                )
            ).all()
        _settle_created_refunds(platform, [(int(i), int(n)) for i, n in created])
        done = _payments_by_id(platform, bound.values())
        fresh = [r for r in requests if r.idempotency not in bound]
        rest = iter(_refund_many(platform, fresh)) if fresh else iter(())
        return [
            done[bound[r.idempotency]] if r.idempotency in bound else next(rest) for r in requests
        ]
    ids = sorted({r.payment_id for r in requests})
    found = _payments_by_id(platform, ids)
    answers: list[Payment | PaymentError | None] = []
    for request in requests:
        p = found.get(request.payment_id)
        if p is None or p.merchant_id != request.merchant_id:
            answers.append(PaymentError("not_found", "payment not found", status=404))
        elif p.status not in (PaymentStatus.COMPLETED, PaymentStatus.PARTIALLY_REFUNDED):
            answers.append(
                PaymentError("not_refundable", f"the payment is {p.status.value}", status=409)
            )
        elif request.amount <= 0:
            answers.append(PaymentError("invalid_amount", "a refund is a positive amount"))
        else:
            answers.append(None)
    asked = [(n, r) for n, r in enumerate(requests) if answers[n] is None]
    if not asked:
        return [a for a in answers if a is not None]
    now = platform.clock.now_ns()
    taken: list[tuple[int, RefundRequest, int, int]] = []  # answer index, request, total, seq
    with platform.engine.begin() as connection:
        # A write first: the rows are locked (and SQLite's write lock held) while deciding.
        state = {int(i): int(refunded) for i, refunded in connection.execute(
            payments.update()
            .where(payments.c.id.in_(sorted({r.payment_id for _, r in asked})))
            .values(updated_at_ns=now)
            .returning(payments.c.id, payments.c.refunded)
        )}  # fmt: skip
        captured = {p.id: p.captured for p in found.values()}
        numbers = _next_refund_numbers(connection, list(state))
        for n, request in asked:
            refunded = state[request.payment_id]
            if refunded + request.amount > captured[request.payment_id]:
                answers[n] = PaymentError(
                    "refund_exceeds_payment", "refunds cannot pass what was paid"
                )
                continue
            state[request.payment_id] = refunded + request.amount
            taken.append((n, request, refunded + request.amount, numbers[request.payment_id]))
            numbers[request.payment_id] += 1
        if taken:
            bind_effects(connection, {
                r.idempotency: Effect(EFFECT_REFUND, r.payment_id)
                for _, r, _, _ in taken if r.idempotency is not None
            }, now_ns=now)  # fmt: skip
            connection.execute(_REFUNDED, [{"i": i, "r": total} for i, total in state.items()])
            # The refund's own record, in the transaction that took its amount: a crash before
            # its ledger posting is found and settled by ``recover_payments``.
            connection.execute(payment_refunds.insert(), [
                {"payment_id": r.payment_id, "seq": seq, "amount": r.amount,
                 "status": "created", "created_at_ns": now} for _, r, _, seq in taken
            ])  # fmt: skip
    cards_and_salts = _cards_and_salts(platform, [r.payment_id for _, r, _, _ in taken])
    shops = get_merchants(platform=platform, merchant_ids={r.merchant_id for _, r, *_ in taken})
    chains, commitments = [], {}
    for _, request, total, seq in taken:
        p = found[request.payment_id]
        card, salt = cards_and_salts[p.id]
        merchant = shops[request.merchant_id]
        after_legs = purchase_legs(platform, card, merchant, total)
        before_legs = purchase_legs(platform, card, merchant, total - request.amount)
        # Reverse each leg by the difference: the partial refunds add up to the full reversal.
        reverse = [
            (credit, debit, after[2] - prior[2])
            for after, prior, (debit, credit, _) in zip(after_legs, before_legs, after_legs,
                                                        strict=True)
        ]  # fmt: skip
        chain = _transfers(reverse, _ids(p.id, f"refund{seq}"), TransferCode.PURCHASE, p.id)
        commitments[chain[0].id] = _commitment(salt, p.id, f"refund{seq}", request.amount)
        chains.append(chain)
    results = _post_chains(platform, chains, commitments)
    outcomes = []
    for (n, request, _, seq), chain_results in zip(taken, results, strict=True):
        posted = all(r in (CreateTransferResult.OK, CreateTransferResult.EXISTS)
                     for r in chain_results)  # fmt: skip
        outcomes.append(_RefundOutcome(request.payment_id, seq, request.amount, posted))
        if not posted:
            refused = sorted(set(chain_results))
            answers[n] = PaymentError("refund_failed", f"the ledger refused: {refused}", 409)
    statuses = _settle_refunds(platform, outcomes, now)
    for n, request, total, _ in taken:
        if answers[n] is None:
            answers[n] = dataclasses.replace(
                found[request.payment_id],
                refunded=total,
                status=statuses.get(request.payment_id, found[request.payment_id].status),
                updated_at_ns=now,
            )
    return [a for a in answers if a is not None]


@dataclass(frozen=True, slots=True)
class _RefundOutcome:
    payment_id: int
    seq: int
    amount: int
    posted: bool  # the reversing chain is in the ledger


def _next_refund_numbers(connection: sa.Connection, payment_ids: Sequence[int]) -> dict[int, int]:
    """Each payment's next refund number (its ledger ids derive from it), read under the
    payment's row lock, so two refunds of one payment never share one."""
    return _next_numbers(connection, payment_refunds, payment_ids, after=1)


def _settle_refunds(
    platform: Platform, outcomes: Sequence[_RefundOutcome], now: int
) -> dict[int, PaymentStatus]:
    """Complete the refunds the ledger posted and give back the amount of those it did not, in
    one transaction — only refunds still ``created`` (a racing recovery settled the others from
    the same ledger state); the refunded payments' new status, by payment id."""
    if not outcomes:
        return {}
    key = sa.tuple_(payment_refunds.c.payment_id, payment_refunds.c.seq)
    with platform.engine.begin() as connection:
        mine: set[tuple[int, int]] = set()
        for posted, status in ((True, "completed"), (False, "failed")):
            keys = sorted((o.payment_id, o.seq) for o in outcomes if o.posted is posted)
            if keys:
                mine |= {(int(i), int(n)) for i, n in connection.execute(
                    payment_refunds.update()
                    .where(key.in_(keys), payment_refunds.c.status == "created")
                    .values(status=status)
                    .returning(payment_refunds.c.payment_id, payment_refunds.c.seq)
                )}  # fmt: skip
        ours = [o for o in outcomes if (o.payment_id, o.seq) in mine]
        failed = [{"i": o.payment_id, "a": o.amount} for o in ours if not o.posted]
        if failed:
            connection.execute(_UNREFUND, failed)
        completed = [o for o in ours if o.posted]
        if not completed:
            return {}
        totals = {int(i): (int(r), int(c)) for i, r, c in connection.execute(
            sa.select(payments.c.id, payments.c.refunded, payments.c.captured)
            .where(payments.c.id.in_(sorted({o.payment_id for o in completed})))
        )}  # fmt: skip
        statuses = {
            i: PaymentStatus.REFUNDED if refunded == captured else PaymentStatus.PARTIALLY_REFUNDED
            for i, (refunded, captured) in totals.items()
        }
        connection.execute(_REFUND_STATUS, [{"i": i, "s": s.value} for i, s in statuses.items()])
        seqs = _next_seqs(connection, sorted(statuses))
        events = []
        for o in completed:
            events.append(_event_row(o.payment_id, seqs[o.payment_id], statuses[o.payment_id],
                                     o.amount, now, "refund"))  # fmt: skip
            seqs[o.payment_id] += 1
        connection.execute(payment_events.insert(), events)
    return statuses


def _recover_refunds(platform: Platform, cutoff: int) -> int:
    """Settle refunds a dead process left ``created`` (after taking their amount, before or
    after the ledger posting). Returns how many."""
    with autocommit(platform.engine) as connection:
        rows = connection.execute(
            sa.select(payment_refunds.c.payment_id, payment_refunds.c.seq).where(
                payment_refunds.c.status == "created", payment_refunds.c.created_at_ns < cutoff
            )
        ).all()
    return _settle_created_refunds(platform, [(int(r.payment_id), int(r.seq)) for r in rows])


def _settle_created_refunds(platform: Platform, keys: Sequence[tuple[int, int]]) -> int:
    """Settle those refunds (payment id, number) still ``created``, behind a fence on their
    reversing chain's ids: completed if the chain posted first, else failed with the amount
    given back. Returns how many."""
    if not keys:
        return 0
    key = sa.tuple_(payment_refunds.c.payment_id, payment_refunds.c.seq)
    with autocommit(platform.engine) as connection:
        rows = connection.execute(
            sa.select(payment_refunds).where(
                key.in_(sorted(set(keys))), payment_refunds.c.status == "created"
            )
        ).all()
    if not rows:
        return 0
    # A fence is keyed by one record id: the refund's first ledger id stands for the refund.
    ids = {(int(r.payment_id), int(r.seq)): _ids(int(r.payment_id), f"refund{r.seq}")
           for r in rows}  # fmt: skip
    posted = fence(platform, [(chain[0], chain) for chain in ids.values()])
    outcomes = [
        _RefundOutcome(int(r.payment_id), int(r.seq), int(r.amount),
                       ids[(int(r.payment_id), int(r.seq))][0] in posted)
        for r in rows
    ]  # fmt: skip
    _settle_refunds(platform, outcomes, platform.clock.now_ns())
    return len(outcomes)


def _cards_and_salts(
    platform: Platform, payment_ids: Sequence[int]
) -> dict[int, tuple[Card, bytes]]:
    """The paying card and the commitment salt of payments, by payment id, in one query."""
    if not payment_ids:
        return {}
    with autocommit(platform.engine) as connection:
        rows = connection.execute(
            sa.select(cards, payments.c.id.label("payment_id"), payments.c.commitment_salt)
            .join(payments, payments.c.card_id == cards.c.id)
            .where(payments.c.id.in_(sorted(set(payment_ids))))
        )
        return {
            int(row.payment_id): (card_from_row(row), bytes(row.commitment_salt)) for row in rows
        }


def refund(
    *, platform: Platform, merchant_id: int, payment_id: int, amount: int,
    idempotency: IdempotencyTag | None = None,
) -> Payment:  # fmt: skip
    """Refund ``amount`` of a completed payment (a batch of one; see ``refund_many``)."""
    [answer] = refund_many(
        platform=platform,
        requests=[RefundRequest(merchant_id, payment_id, amount, idempotency)],
    )
    if isinstance(answer, PaymentError):
        raise answer
    return answer


def list_payments(
    *,
    platform: Platform,
    user_id: int | None = None,
    merchant_id: int | None = None,
    day: str | None = None,
    terminal: str | None = None,
    before_id: int | None = None,
    limit: int = 20,
) -> list[Payment]:
    """A user's or a merchant's payments, newest first; merchants filter by day and terminal."""
    query = _payments_query()
    if user_id is not None:
        query = query.where(payments.c.user_id == user_id)
    if merchant_id is not None:
        query = query.where(payments.c.merchant_id == merchant_id)
    if day is not None:
        query = query.where(payments.c.day == day)
    if terminal is not None:
        query = query.where(terminals.c.code == terminal)
    if before_id is not None:
        query = query.where(payments.c.id < before_id)
    with autocommit(platform.engine) as connection:
        rows = connection.execute(query.order_by(payments.c.id.desc()).limit(limit)).all()
    return [_payment(row) for row in rows]


def set_payment_limits(
    *, platform: Platform, user_id: int, free_per_payment: int, qr_daily_limit: int
) -> None:
    """The user's own limits: the password-free threshold (≤ ¥1,000) and the daily total of QR
    payments (≤ ¥50,000, the limit the user agrees to)."""
    from flashpay.wallet.policy import QR_DAILY_MAX

    if not 0 <= free_per_payment <= FREE_DAILY_MAX:
        raise WalletError(WalletRefusal.INVALID_LIMIT, "the password-free threshold is ¥0–1,000")
    if not 0 < qr_daily_limit <= QR_DAILY_MAX:
        raise WalletError(WalletRefusal.INVALID_LIMIT, "the daily QR limit is up to ¥50,000")
    with platform.engine.begin() as connection:
        connection.execute(
            wallet_users.update()
            .where(wallet_users.c.id == user_id)
            .values(free_per_payment=free_per_payment, qr_daily_limit=qr_daily_limit)
        )
