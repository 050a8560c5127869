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

import hashlib
import logging
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa

from flashpay.cards.models import cards
from flashpay.cards.service import Card, CardStatus, card_from_row, is_expired
from flashpay.clock import NS_PER_SECOND
from flashpay.db import autocommit
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
from flashpay.merchants.models import merchants, qr_orders, terminals
from flashpay.merchants.service import (
    Merchant,
    Terminal,
    get_merchant,
    merchant_terminal,
    order_by_bill,
)
from flashpay.money import MoneyError
from flashpay.payments import limits
from flashpay.payments.models import payment_codes, payment_events, payments, token_counters
from flashpay.payments.payer import Payer, payer_by_token, payer_by_wallet_card
from flashpay.platform import Platform
from flashpay.qr import payment_codes as codes
from flashpay.qr.merchant_codes import read_flashpay_code
from flashpay.qr.mpm import MpmDecodeError, QrError, decode_mpm
from flashpay.sim.books import FeeSplit
from flashpay.wallet.models import wallet_cards, wallet_users
from flashpay.wallet.service import (
    FREE_DAILY_MAX,
    STATIC_DAILY_MAX,
    PinCheck,
    WalletCardStatus,
    WalletError,
    check_pin,
    record_pin_check,
)

logger = logging.getLogger(__name__)

HOLD_SECONDS_DEFAULT = 2 * 3600
HOLD_SECONDS_MAX = 7 * 24 * 3600
AMOUNT_MAX = 10**12


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


# -- front ends -------------------------------------------------------------------------------
def pay_scanned_code(
    *,
    platform: Platform,
    user_id: int,
    payload: str,
    wallet_card_id: int,
    amount: int | None = None,
    pin: str | None = None,
) -> Payment:
    """The user scanned ``payload`` (MPM) and pays it with a bound card: ``amount`` for a static
    code (a dynamic code carries its own; giving a different one is a 422)."""
    payer = payer_by_wallet_card(platform=platform, user_id=user_id, wallet_card_id=wallet_card_id)
    if payer is None:
        raise PaymentError("not_found", "no such card in this wallet", status=404)
    if amount is not None and not 0 < amount <= AMOUNT_MAX:
        raise PaymentError("invalid_amount", "the amount is a positive number of fen")
    attempt = _Attempt(kind=PaymentKind.MPM_STATIC, amount=amount or 0, payer=payer, pin=pin)
    try:
        code = read_flashpay_code(decode_mpm(payload))
    except (MpmDecodeError, MoneyError, QrError):
        attempt.reason = DeclineReason.INVALID_CODE
        return _run(platform, attempt)
    if code is None:
        attempt.reason = DeclineReason.FOREIGN_CODE
        return _run(platform, attempt)
    merchant, terminal = merchant_terminal(
        platform=platform, merchant_code=code.merchant_id, terminal_code=code.terminal_id
    )
    if merchant is None or terminal is None or merchant.status != "active":
        attempt.reason = DeclineReason.MERCHANT_NOT_FOUND
        return _run(platform, attempt)
    attempt.merchant, attempt.terminal = merchant, terminal
    if code.dynamic:
        attempt.kind = PaymentKind.MPM_DYNAMIC
        order = (
            order_by_bill(platform=platform, merchant_id=merchant.id, bill_number=code.bill_number)
            if code.bill_number
            else None
        )
        if order is None or code.amount is None or code.amount.amount_minor != order.amount:
            attempt.reason = DeclineReason.ORDER_NOT_FOUND
            attempt.amount = amount or 0
            return _run(platform, attempt)
        if amount is not None and amount != order.amount:
            raise PaymentError("amount_mismatch", "a dynamic code carries its own amount")
        attempt.amount, attempt.order_id = order.amount, order.id
        attempt.bill_number = order.bill_number
        attempt.order_expires_at_ns = order.expires_at_ns
        if order.expires_at_ns <= platform.clock.now_ns():
            attempt.reason = DeclineReason.ORDER_EXPIRED
    elif amount is None:
        raise PaymentError("amount_required", "a static code needs the amount to pay")
    return _run(platform, attempt)


def issue_code(*, platform: Platform, user_id: int, wallet_card_id: int) -> codes.IssuedCode:
    """A one-time payment code for a bound card (valid 60 s): the next counter of the card's
    token, recorded so the network can find its numeric form and refuse a second use."""
    payer = payer_by_wallet_card(platform=platform, user_id=user_id, wallet_card_id=wallet_card_id)
    if payer is None:
        raise PaymentError("not_found", "no such card in this wallet", status=404)
    token = payer.token
    now_s = platform.clock.now_ns() // NS_PER_SECOND
    with platform.engine.begin() as connection:
        dialect = connection.dialect.name
        insert = (sa.dialects.postgresql if dialect == "postgresql" else sa.dialects.sqlite).insert
        statement = insert(token_counters).values(token=token, atc=1)
        atc = connection.execute(
            statement.on_conflict_do_update(
                index_elements=[token_counters.c.token],
                set_={"atc": token_counters.c.atc + 1},
            ).returning(token_counters.c.atc)
        ).scalar_one()
        issued = codes.issue_payment_code(
            token=token,
            token_expiry=payer.card.expiry,
            key=codes.token_key(platform.keys.payment_code_master, token),
            lookup_key=platform.keys.payment_code_lookup,
            atc=int(atc) % 0x10000,
            now_s=now_s,
            credit=payer.card.card_type is CardType.CREDIT,
        )
        connection.execute(
            payment_codes.insert().values(
                token=token, atc=issued.code.atc, numeric=issued.numeric, user_id=user_id,
                wallet_card_id=wallet_card_id, issued_at=now_s, key_version=1,
                unpredictable=issued.code.unpredictable_number,
                cryptogram=issued.code.cryptogram,
                credit=issued.code.aid == codes.AID_CREDIT, used_at_ns=None, payment_id=None,
            )
        )  # fmt: skip
    return issued


def _recorded_code(platform: Platform, numeric: str) -> codes.PaymentCode | None:
    with autocommit(platform.engine) as connection:
        row = connection.execute(
            sa.select(payment_codes, cards.c.expiry)
            .join(wallet_cards, wallet_cards.c.token == payment_codes.c.token)
            .join(cards, cards.c.id == wallet_cards.c.card_id)
            .where(payment_codes.c.numeric == numeric)
        ).first()
    if row is None:
        return None
    return codes.PaymentCode(
        token=str(row.token),
        token_expiry=str(row.expiry),
        aid=codes.AID_CREDIT if row.credit else codes.AID_DEBIT,
        atc=int(row.atc),
        unpredictable_number=bytes(row.unpredictable),
        issued_at=int(row.issued_at),
        key_version=int(row.key_version),
        cryptogram=bytes(row.cryptogram),
    )


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
    """The merchant's terminal scanned a payment code (CPM payload or the 19 digits) and
    collects ``amount``; ``capture=False`` only authorizes (a hold, captured or voided later)."""
    merchant, terminal = merchant_terminal(
        platform=platform, merchant_id=merchant_id, terminal_code=terminal_code
    )
    if merchant is None:
        raise PaymentError("not_found", "no such merchant", status=404)
    if terminal is None:
        raise PaymentError("unknown_terminal", "no such terminal at this merchant")
    if not 0 < amount <= AMOUNT_MAX:
        raise PaymentError("invalid_amount", "the amount is a positive number of fen")
    if not 60 <= hold_seconds <= HOLD_SECONDS_MAX:
        raise PaymentError("invalid_hold", "a hold lasts 60 s to 7 days")
    attempt = _Attempt(kind=PaymentKind.CPM, amount=amount, merchant=merchant, terminal=terminal,
                       two_phase=not capture, hold_seconds=hold_seconds)  # fmt: skip
    text = code.strip()
    now_s = platform.clock.now_ns() // NS_PER_SECOND
    presented: codes.PaymentCode | None
    try:
        if text.isdigit():
            digits = codes.parse_numeric_code(text)
            presented = _recorded_code(platform, digits)
            if presented is None:
                attempt.reason = DeclineReason.CODE_INVALID
                return _run(platform, attempt)
            check = codes.verify_numeric_code(
                digits, presented,
                key=codes.token_key(platform.keys.payment_code_master, presented.token),
                lookup_key=platform.keys.payment_code_lookup, now_s=now_s, used=(),
            )  # fmt: skip
        else:
            presented = codes.read_payment_code(text)
            check = codes.verify_payment_code(
                presented,
                key=codes.token_key(platform.keys.payment_code_master, presented.token),
                now_s=now_s, used=(),
            )  # fmt: skip
    except codes.PaymentCodeError as exc:
        attempt.reason = (
            DeclineReason.FOREIGN_CODE
            if exc.reason is codes.CodeDecline.FOREIGN
            else DeclineReason.INVALID_CODE
        )
        return _run(platform, attempt)
    if check is not None:
        attempt.reason = {
            codes.CodeDecline.EXPIRED: DeclineReason.CODE_EXPIRED,
            codes.CodeDecline.NOT_YET_VALID: DeclineReason.CODE_INVALID,
        }.get(check, DeclineReason.CODE_INVALID)
    attempt.payer = payer_by_token(platform=platform, token=presented.token)
    if attempt.payer is None and attempt.reason is None:
        attempt.reason = DeclineReason.CODE_INVALID  # the card was unbound since
    attempt.code_key = (presented.token, presented.atc)
    return _run(platform, attempt)


# -- the pipeline -----------------------------------------------------------------------------
def _verify(platform: Platform, a: _Attempt) -> PinCheck | None:
    """The PIN verdict when a PIN was given (``None`` otherwise); sets a decline reason."""
    payer = a.payer
    assert payer is not None
    verdict: PinCheck | None = None
    if a.pin is not None:
        verdict = check_pin(platform=platform, state=payer.pin, pin=a.pin)
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


def _run(platform: Platform, a: _Attempt) -> Payment:
    verdict = _verify(platform, a) if a.payer is not None else None
    pin_ok = verdict is PinCheck.OK
    now = platform.clock.now_ns()
    day = limits.beijing_day(now)
    payment_id = new_id()
    salt = secrets.token_bytes(16)
    scopes = _limits(a, pin_ok) if a.payer is not None else {}
    with platform.engine.begin() as connection:
        if a.payer is not None and verdict is not None:
            record_pin_check(platform=platform, connection=connection, state=a.payer.pin,
                             verdict=verdict)  # fmt: skip
        if a.reason is None and a.order_id is not None:
            claimed = connection.execute(
                qr_orders.update()
                .where(qr_orders.c.id == a.order_id, qr_orders.c.status == "open")
                .values(status="paid", payment_id=payment_id)
            ).rowcount
            if claimed != 1:
                a.reason = DeclineReason.ORDER_ALREADY_PAID
        if a.reason is None and a.code_key is not None:
            used = connection.execute(
                payment_codes.update()
                .where(
                    payment_codes.c.token == a.code_key[0],
                    payment_codes.c.atc == a.code_key[1],
                    payment_codes.c.used_at_ns.is_(None),
                )
                .values(used_at_ns=now, payment_id=payment_id)
            ).rowcount
            if used != 1:
                a.reason = DeclineReason.CODE_ALREADY_USED
        if a.reason is None and not limits.reserve_in(
            connection, day=day, amount=a.amount, limits=list(scopes.items())
        ):
            a.reason = DeclineReason.LIMIT_EXCEEDED
        status = PaymentStatus.DECLINED if a.reason is not None else PaymentStatus.CREATED
        payer = a.payer
        connection.execute(
            payments.insert().values(
                id=payment_id, kind=a.kind.value,
                user_id=payer.user_id if payer else None,
                wallet_card_id=payer.wallet_card_id if payer else None,
                card_id=payer.card.id if payer else None,
                merchant_id=a.merchant.id if a.merchant else None,
                terminal_id=a.terminal.id if a.terminal else None,
                order_id=a.order_id, amount=a.amount, captured=0, refunded=0, currency="CNY",
                status=status.value, decline_reason=a.reason and a.reason.value, voucher=None,
                pin_verified=pin_ok, two_phase=a.two_phase, hold_expires_at_ns=None,
                commitment_salt=salt, day=day, created_at_ns=now, updated_at_ns=now,
            )
        )  # fmt: skip
        _event(connection, payment_id, 1, status, a.amount, now, a.reason and a.reason.value)
    outcome = _Outcome(status, a.reason, None, 0, None, now)
    if a.reason is None:
        outcome = _post(platform, payment_id, a, day, salt, scopes)
    # The answer from what we know: no read-back of the row just written.
    return Payment(
        id=payment_id,
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
        decline_reason=outcome.reason,
        voucher=outcome.voucher,
        pin_verified=pin_ok,
        two_phase=a.two_phase,
        hold_expires_at_ns=outcome.hold_expires_at_ns,
        created_at_ns=now,
        updated_at_ns=outcome.updated_at_ns,
    )


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
        payment_events.insert().values(
            payment_id=payment_id,
            seq=seq,
            status=status.value,
            amount=amount,
            at_ns=at_ns,
            detail=detail,
        )
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


def _post(
    platform: Platform,
    payment_id: int,
    a: _Attempt,
    day: str,
    salt: bytes,
    scopes: Mapping[str, int],
) -> _Outcome:
    """Post the chain and complete (or decline) the record; what it became."""
    assert a.payer is not None
    assert a.merchant is not None
    legs = purchase_legs(platform, a.payer.card, a.merchant, a.amount)
    if a.two_phase:
        chain = _transfers(legs, _ids(payment_id, "hold"), TransferCode.PURCHASE_HOLD, payment_id,
                           flags=TransferFlags.PENDING, timeout=a.hold_seconds)  # fmt: skip
    else:
        chain = _transfers(legs, _ids(payment_id, "purchase"), TransferCode.PURCHASE, payment_id)
    results = platform.ledger.create_transfers(
        chain, commitments={chain[0].id: _commitment(salt, payment_id, "purchase", a.amount)}
    )
    now = platform.clock.now_ns()
    if all(r in (CreateTransferResult.OK, CreateTransferResult.EXISTS) for r in results):
        status = PaymentStatus.AUTHORIZED if a.two_phase else PaymentStatus.COMPLETED
        with platform.engine.begin() as connection:
            settled = connection.execute(
                payments.update()
                .where(payments.c.id == payment_id, payments.c.status == "created")
                .values(
                    status=status.value,
                    voucher=_voucher(day, payment_id),
                    captured=0 if a.two_phase else a.amount,
                    updated_at_ns=now,
                    hold_expires_at_ns=now + a.hold_seconds * NS_PER_SECOND
                    if a.two_phase
                    else None,
                )
            ).rowcount
            if settled == 1:  # else a recovery settled it from the same ledger state
                _event(connection, payment_id, 2, status, a.amount, now)
        return _Outcome(
            status,
            None,
            _voucher(day, payment_id),
            0 if a.two_phase else a.amount,
            now + a.hold_seconds * NS_PER_SECOND if a.two_phase else None,
            now,
        )
    first = next(r for r in results if r is not CreateTransferResult.LINKED_EVENT_FAILED)
    if first in (CreateTransferResult.EXCEEDS_CREDITS, CreateTransferResult.EXCEEDS_DEBITS):
        reason = DeclineReason.INSUFFICIENT_FUNDS
    else:
        logger.error("payment %s: the ledger refused the chain: %s", payment_id, results)
        reason = DeclineReason.PROCESSING_ERROR
    with platform.engine.begin() as connection:
        _decline_created(connection, payment_id, a.amount, reason, now, day, scopes, a.order_id)
    return _Outcome(PaymentStatus.DECLINED, reason, None, 0, None, now)


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
    limits.release_in(connection, day=day, amount=amount, scopes=list(scopes))
    if order_id is not None:  # the order can be paid again (with another card)
        connection.execute(
            qr_orders.update()
            .where(qr_orders.c.id == order_id, qr_orders.c.payment_id == payment_id)
            .values(status="open", payment_id=None)
        )


def recover_payments(*, platform: Platform, older_than_seconds: int = 60) -> int:
    """Settle payments a dead process left ``created`` (after their record, before or after the
    ledger post): from what the ledger holds, completed (or authorized for a hold) with their
    voucher, else declined ``processing_error`` with their limits and order given back. Safe to
    run at any time, from any process. Returns how many it settled."""
    cutoff = platform.clock.now_ns() - older_than_seconds * NS_PER_SECOND
    with autocommit(platform.engine) as connection:
        rows = connection.execute(
            sa.select(payments).where(
                payments.c.status == "created", payments.c.created_at_ns < cutoff
            )
        ).all()
    for row in rows:
        payment_id, amount = int(row.id), int(row.amount)
        posted = platform.ledger.lookup_transfers(
            _ids(payment_id, "hold" if row.two_phase else "purchase")
        )
        now = platform.clock.now_ns()
        with platform.engine.begin() as connection:
            if posted:
                status = PaymentStatus.AUTHORIZED if row.two_phase else PaymentStatus.COMPLETED
                hold_end = (
                    posted[0].timestamp + posted[0].timeout_seconds * NS_PER_SECOND
                    if row.two_phase
                    else None
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


def _merchant_payment(platform: Platform, merchant_id: int, payment_id: int) -> Payment:
    found = get_payment(platform=platform, payment_id=payment_id, merchant_id=merchant_id)
    if found is None:
        raise PaymentError("not_found", "payment not found", status=404)
    return found


def capture(*, platform: Platform, merchant_id: int, payment_id: int, amount: int) -> Payment:
    """Capture an authorization, all or part: the hold is voided and the captured amount posted
    as a purchase, in one linked batch (both or neither)."""
    p = _merchant_payment(platform, merchant_id, payment_id)
    if p.status is not PaymentStatus.AUTHORIZED:
        raise PaymentError("not_authorized", f"the payment is {p.status.value}", status=409)
    if not 0 < amount <= p.amount:
        raise PaymentError("invalid_amount", "capture between ¥0.01 and the authorized amount")
    return _settle_hold(platform, p, amount)


def void(*, platform: Platform, merchant_id: int, payment_id: int) -> Payment:
    """Release an authorization's hold."""
    p = _merchant_payment(platform, merchant_id, payment_id)
    if p.status is not PaymentStatus.AUTHORIZED:
        raise PaymentError("not_authorized", f"the payment is {p.status.value}", status=409)
    return _settle_hold(platform, p, 0)


def _payment_parts(platform: Platform, p: Payment) -> tuple[Card, Merchant, bytes]:
    with autocommit(platform.engine) as connection:
        row = connection.execute(
            sa.select(cards, payments.c.commitment_salt)
            .join(payments, payments.c.card_id == cards.c.id)
            .where(payments.c.id == p.id)
        ).one()
    assert p.merchant_id is not None
    merchant = get_merchant(platform=platform, merchant_id=p.merchant_id)
    assert merchant is not None
    return card_from_row(row), merchant, bytes(row.commitment_salt)


def _settle_hold(platform: Platform, p: Payment, amount: int) -> Payment:
    card, merchant, salt = _payment_parts(platform, p)
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
    results = platform.ledger.create_transfers(
        chain, commitments={chain[0].id: _commitment(salt, p.id, "capture", amount)}
    )
    if not all(r in (CreateTransferResult.OK, CreateTransferResult.EXISTS) for r in results):
        if CreateTransferResult.PENDING_TRANSFER_EXPIRED in results:
            return _expire_if_due(platform, p)
        raise PaymentError("hold_not_settled", f"the ledger refused: {sorted(set(results))}", 409)
    now = platform.clock.now_ns()
    status = PaymentStatus.COMPLETED if amount else PaymentStatus.VOIDED
    with platform.engine.begin() as connection:
        connection.execute(
            payments.update()
            .where(payments.c.id == p.id, payments.c.status == "authorized")
            .values(status=status.value, captured=amount, updated_at_ns=now)
        )
        _event(connection, p.id, _next_seq(connection, p.id), status, amount, now)
        if amount < p.amount:  # give back the part of the limits the hold took and did not use
            assert p.user_id is not None
            scopes = [f"qr:user:{p.user_id}", f"card:{card.id}"]
            if not p.pin_verified:
                scopes.append(f"free:user:{p.user_id}")
            day = limits.beijing_day(p.created_at_ns)
            limits.release_in(connection, day=day, amount=p.amount - amount, scopes=scopes)
    found = _load(platform, p.id)
    assert found is not None
    return found


def refund(*, platform: Platform, merchant_id: int, payment_id: int, amount: int) -> Payment:
    """Refund ``amount`` of a completed payment to the card it came from; several partial
    refunds add up to at most what was paid. Only the merchant that was paid may refund."""
    p = _merchant_payment(platform, merchant_id, payment_id)
    if p.status not in (PaymentStatus.COMPLETED, PaymentStatus.PARTIALLY_REFUNDED):
        raise PaymentError("not_refundable", f"the payment is {p.status.value}", status=409)
    if amount <= 0:
        raise PaymentError("invalid_amount", "a refund is a positive amount")
    now = platform.clock.now_ns()
    with platform.engine.begin() as connection:
        before = connection.execute(
            payments.update()
            .where(payments.c.id == p.id, payments.c.refunded + amount <= payments.c.captured)
            .values(refunded=payments.c.refunded + amount, updated_at_ns=now)
            .returning(payments.c.refunded, payments.c.captured)
        ).first()
        if before is None:
            raise PaymentError("refund_exceeds_payment", "refunds cannot pass what was paid")
        total, captured = int(before.refunded), int(before.captured)
        seq = _next_seq(connection, p.id)
    card, merchant, salt = _payment_parts(platform, p)
    after_legs = purchase_legs(platform, card, merchant, total)
    before_legs = purchase_legs(platform, card, merchant, total - amount)
    # Reverse each leg by the difference: the partial refunds add up to the full reversal.
    reverse = [
        (credit, debit, after[2] - prior[2])
        for after, prior, (debit, credit, _) in zip(after_legs, before_legs, after_legs,
                                                    strict=True)
    ]  # fmt: skip
    chain = _transfers(reverse, _ids(p.id, f"refund{seq}"), TransferCode.PURCHASE, p.id)
    results = platform.ledger.create_transfers(
        chain, commitments={chain[0].id: _commitment(salt, p.id, f"refund{seq}", amount)}
    )
    if not all(r in (CreateTransferResult.OK, CreateTransferResult.EXISTS) for r in results):
        with platform.engine.begin() as connection:
            connection.execute(
                payments.update()
                .where(payments.c.id == p.id)
                .values(refunded=payments.c.refunded - amount)
            )
        raise PaymentError("refund_failed", f"the ledger refused: {sorted(set(results))}", 409)
    status = PaymentStatus.REFUNDED if total == captured else PaymentStatus.PARTIALLY_REFUNDED
    with platform.engine.begin() as connection:
        connection.execute(
            payments.update().where(payments.c.id == p.id).values(status=status.value)
        )
        _event(connection, p.id, seq, status, amount, now, "refund")
    found = _load(platform, p.id)
    assert found is not None
    return found


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
    from flashpay.wallet.service import QR_DAILY_MAX

    if not 0 <= free_per_payment <= FREE_DAILY_MAX:
        raise WalletError("invalid_limit", "the password-free threshold is ¥0–1,000")
    if not 0 < qr_daily_limit <= QR_DAILY_MAX:
        raise WalletError("invalid_limit", "the daily QR limit is up to ¥50,000")
    with platform.engine.begin() as connection:
        connection.execute(
            wallet_users.update()
            .where(wallet_users.c.id == user_id)
            .values(free_per_payment=free_per_payment, qr_daily_limit=qr_daily_limit)
        )
