"""The vocabulary of QR payments: kinds, statuses, decline reasons, the answers, the requests.

A ``DeclineReason`` is a recorded outcome (a 201 with ``status: declined``), listed in the
order the pipeline checks it; a request that never became a payment is a ``PaymentError``
(``flashpay.payments.errors``). ``Attempt`` is what a front end (``fronts``) hands the unit of
work (``unit_of_work``): everything a payment needs once its payload or code has been read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from flashpay.errors import invariant
from flashpay.idempotency import (
    IdempotencyTag,
)
from flashpay.merchants.service import (
    Merchant,
    Terminal,
)
from flashpay.money import CNY, Money
from flashpay.payments.payer import Payer
from flashpay.payments.plans import Share

logger = logging.getLogger(__name__)

HOLD_SECONDS_DEFAULT = 2 * 3600
HOLD_SECONDS_MAX = 7 * 24 * 3600
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
    # A promotion's discount (decision 0019): ``amount`` stays the original amount (what the
    # merchant sold, credited as for the full amount less MDR); the cardholder paid
    # ``amount - discount``; ``promotions`` says which campaigns and funders paid the rest.
    discount: int = 0
    promotions: tuple[Share, ...] = ()

    @property
    def paid(self) -> int:
        """What the cardholder paid (or, a hold, would pay)."""
        return self.amount - self.discount


@dataclass(frozen=True, slots=True)
class PaymentEvent:
    seq: int
    status: PaymentStatus
    amount: int
    at_ns: int
    detail: str | None


@dataclass(frozen=True, slots=True)
class Attempt:
    """Everything a payment needs once its front end has run, frozen: a front end builds it
    (``reason`` set when the code, the merchant or the order already declines it), and the unit
    of work derives the later values with ``dataclasses.replace`` from the planners'
    answers (``flashpay.payments.planning``)."""

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
def fen(amount: Money) -> int:
    """A request's ``Money`` in fen: the one place a QR payment's, a settlement's or a refund's
    amount becomes the minor units the ledger legs and the rows are built from. The requests
    carry the ``Money`` the router parsed (always CNY: QR payments have no currency field), so
    another currency here is a caller's bug, not a refusal."""
    invariant(amount.currency == CNY, "a QR payment is in CNY, not %s", amount.currency.code)
    return amount.amount_minor


@dataclass(frozen=True, slots=True)
class ScanRequest:
    """The user's app scanned ``payload`` (MPM) and pays it with a bound card: ``amount`` for a
    static code (a dynamic code carries its own; giving a different one is a 422)."""

    user_id: int
    payload: str
    wallet_card_id: int
    amount: Money | None = None
    pin: str | None = None
    idempotency: IdempotencyTag | None = None  # the caller's key, bound to the payment


@dataclass(frozen=True, slots=True)
class CollectRequest:
    """The merchant's terminal scanned a payment code (CPM payload or the 19 digits) and
    collects ``amount``; ``capture=False`` only authorizes (a hold, captured or voided later)."""

    merchant_id: int
    code: str
    amount: Money
    terminal_code: str = "T0001"
    capture: bool = True
    hold_seconds: int = HOLD_SECONDS_DEFAULT
    idempotency: IdempotencyTag | None = None  # the caller's key, bound to the payment


PaymentRequest = ScanRequest | CollectRequest


@dataclass(frozen=True, slots=True)
class HoldSettlement:
    """A merchant settles one of its authorizations: captures ``amount`` (all or part), or
    voids the hold with ``amount=0``."""

    merchant_id: int
    payment_id: int
    amount: Money
    idempotency: IdempotencyTag | None = None  # the caller's key, bound to the settlement

    @property
    def fen(self) -> int:
        return fen(self.amount)


@dataclass(frozen=True, slots=True)
class RefundRequest:
    """The merchant that was paid gives back ``amount`` of a completed payment."""

    merchant_id: int
    payment_id: int
    amount: Money
    idempotency: IdempotencyTag | None = None  # the caller's key, bound to the refund

    @property
    def fen(self) -> int:
        return fen(self.amount)
