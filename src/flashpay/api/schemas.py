"""Request and response shapes of the wallet, card, institution and transfer endpoints.

Money is a decimal *string* in requests and responses (``"12.34"``) with its currency, plus the
integer minor units in responses (``amount_minor``): never a JSON number, which clients would
read as a float. Card numbers appear only masked; a request field that carries one is named
``card_number`` and is never echoed, logged or stored in clear.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from flashpay.api.types import IdField
from flashpay.cards.service import Card, CardBalance
from flashpay.clock import to_datetime
from flashpay.merchants.service import Merchant, Order
from flashpay.money import Money
from flashpay.payments.p2p import P2PTransfer
from flashpay.payments.qr import Payment, PaymentEvent
from flashpay.wallet.binding import Binding
from flashpay.wallet.cards import WalletCard
from flashpay.wallet.registration import User
from flashpay.wallet.sessions import Session


class Strict(BaseModel):
    """A request body: unknown fields refused, and every field only its own JSON type (strict:
    no ``true`` for an int, no ``"1"`` for an id, no number for a decimal-text amount)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)


def money_text(amount_minor: int, currency: str = "CNY") -> str:
    return Money.of(amount_minor, currency).decimal_text()


# -- users --------------------------------------------------------------------------------------
class RegisterIn(Strict):
    phone: str = Field(max_length=20)
    name: str = Field(max_length=64)
    id_number: str = Field(max_length=18)
    password: str = Field(max_length=128)


class UserOut(BaseModel):
    id: int
    phone: str
    name: str
    real_name_verified: bool
    pin_set: bool

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            phone=user.phone,
            name=user.name,
            real_name_verified=user.real_name_verified,
            pin_set=user.pin_set,
        )


class LoginIn(Strict):
    phone: str = Field(max_length=20)
    password: str = Field(max_length=128)


class SessionOut(BaseModel):
    token: str
    token_type: str = "bearer"
    user_id: int
    expires_at: datetime

    @classmethod
    def of(cls, session: Session) -> SessionOut:
        return cls(
            token=session.token,
            user_id=session.user_id,
            expires_at=to_datetime(session.expires_at_ns),
        )


class PinIn(Strict):
    pin: str = Field(max_length=6)
    password: str = Field(max_length=128)


# -- cards in the wallet ------------------------------------------------------------------------
class BindingIn(Strict):
    card_number: str = Field(max_length=23, description="Digits; spaces or dashes allowed.")
    expiry: str = Field(max_length=5, description="MM/YY as printed on the card.")
    cvv: str | None = Field(default=None, max_length=4, description="Required for credit cards.")


class BindingOut(BaseModel):
    binding_id: int
    status: str = "otp_sent"
    phone_hint: str
    expires_at: datetime

    @classmethod
    def of(cls, binding: Binding) -> BindingOut:
        return cls(
            binding_id=binding.id,
            phone_hint=binding.phone_hint,
            expires_at=to_datetime(binding.expires_at_ns),
        )


class ConfirmIn(Strict):
    otp: str = Field(max_length=8)


class WalletCardOut(BaseModel):
    id: int
    masked_number: str
    last4: str
    card_type: str
    issuer: str
    issuer_name: str
    expiry: str
    status: str
    is_default: bool
    bound_at: datetime

    @classmethod
    def of(cls, card: WalletCard) -> WalletCardOut:
        return cls(
            id=card.id,
            masked_number=card.card.masked,
            last4=card.card.last4,
            card_type=card.card.card_type.value,
            issuer=card.issuer_code,
            issuer_name=card.issuer_name,
            expiry=f"{card.card.expiry[2:]}/{card.card.expiry[:2]}",
            status=card.status.value,
            is_default=card.is_default,
            bound_at=to_datetime(card.bound_at_ns),
        )


class WalletCardList(BaseModel):
    items: list[WalletCardOut]


class BalanceOut(BaseModel):
    card_type: str
    currency: str = "CNY"
    available: str
    ledger_balance: str | None = None
    credit_limit: str | None = None
    outstanding: str | None = None
    pending_authorizations: str | None = None

    @classmethod
    def of(cls, balance: CardBalance) -> BalanceOut:
        def text(value: int | None) -> str | None:
            return None if value is None else money_text(value)

        return cls(
            card_type=balance.card_type.value,
            available=money_text(balance.available),
            ledger_balance=text(balance.ledger),
            credit_limit=text(balance.credit_limit),
            outstanding=text(balance.outstanding),
            pending_authorizations=text(balance.pending),
        )


# -- transfers ----------------------------------------------------------------------------------
class TransferIn(Strict):
    from_card_id: IdField
    amount: str = Field(max_length=24, description='Decimal text, e.g. "12.34".')
    currency: str = Field(default="CNY", max_length=3)
    pin: str = Field(max_length=6)
    to_phone: str | None = Field(default=None, max_length=20)
    to_card_number: str | None = Field(default=None, max_length=23)
    memo: str | None = Field(default=None, max_length=64)


class TransferOut(BaseModel):
    id: str  # 63-bit ids travel as strings: JavaScript numbers lose digits past 2**53
    status: str
    decline_reason: str | None
    amount: str
    amount_minor: int
    currency: str
    from_card_id: IdField
    from_card: str
    recipient_kind: str
    recipient: str
    voucher: str | None
    memo: str | None
    created_at: datetime
    completed_at: datetime | None

    @classmethod
    def of(cls, t: P2PTransfer) -> TransferOut:
        return cls(
            id=str(t.id),
            status=t.status.value,
            decline_reason=None if t.decline_reason is None else t.decline_reason.value,
            amount=money_text(t.amount, t.currency),
            amount_minor=t.amount,
            currency=t.currency,
            from_card_id=t.from_wallet_card_id,
            from_card=t.from_card_display,
            recipient_kind=t.recipient_kind,
            recipient=t.recipient_display,
            voucher=t.voucher,
            memo=t.memo,
            created_at=to_datetime(t.created_at_ns),
            completed_at=None if t.completed_at_ns is None else to_datetime(t.completed_at_ns),
        )


class ReceiptOut(BaseModel):
    voucher: str
    transfer_id: str
    status: str
    amount: str
    currency: str
    from_card: str
    recipient: str
    completed_at: datetime
    audit: dict[str, Any] | None = Field(
        default=None,
        description="flashpay-receipt/v1 from the audit log; null until a final checkpoint "
        "covers the transfer's postings.",
    )


# -- issuers and the network -------------------------------------------------------------------
class IssueCardIn(Strict):
    card_number: str = Field(max_length=23)
    expiry: str = Field(max_length=5, description="MM/YY")
    holder_name: str = Field(max_length=64)
    holder_id_number: str = Field(max_length=18)
    phone: str = Field(max_length=20)
    credit_limit: str | None = Field(default=None, max_length=24)
    opening_balance: str | None = Field(default=None, max_length=24)
    statement_day: int | None = Field(default=None, ge=1, le=28)


class IssuerCardOut(BaseModel):
    id: int
    masked_number: str
    card_type: str
    expiry: str
    status: str
    holder_name: str
    credit_limit: str | None

    @classmethod
    def of(cls, card: Card) -> IssuerCardOut:
        return cls(
            id=card.id,
            masked_number=card.masked,
            card_type=card.card_type.value,
            expiry=f"{card.expiry[2:]}/{card.expiry[:2]}",
            status=card.status.value,
            holder_name=card.holder_name,
            credit_limit=money_text(card.credit_limit) if card.credit_limit else None,
        )


class IssuedCardOut(IssuerCardOut):
    cvv: str = Field(description="Shown once, for the card carrier; never stored.")


class InstitutionOut(BaseModel):
    id: int
    code: str
    name: str
    kind: str
    iin: str


class NetworkLoadOut(BaseModel):
    institutions_created: int
    institutions_updated: int
    bin_ranges: int
    accounts_created: int


# -- merchants and QR payments -------------------------------------------------------------------
class OnboardIn(Strict):
    legal_name: str = Field(max_length=100)
    display_name: str = Field(max_length=25)
    city: str = Field(max_length=15)
    mcc: str = Field(max_length=4)
    scene: str = Field(max_length=20)


class MerchantOut(BaseModel):
    id: int
    code: str
    acquirer_id: int
    legal_name: str
    display_name: str
    city: str
    mcc: str
    scene: str
    status: str

    @classmethod
    def of(cls, m: Merchant) -> MerchantOut:
        return cls(id=m.id, code=m.code, acquirer_id=m.acquirer_id, legal_name=m.legal_name,
                   display_name=m.display_name, city=m.city, mcc=m.mcc, scene=m.scene.value,
                   status=m.status)  # fmt: skip


class OnboardedOut(MerchantOut):
    api_key: str = Field(description="The merchant's API key, shown once.")


class TerminalOut(BaseModel):
    id: int
    code: str


class OrderIn(Strict):
    amount: str = Field(max_length=24)
    bill_number: str = Field(max_length=25)
    terminal: str = Field(default="T0001", max_length=8)
    expires_in_seconds: int = Field(default=900, ge=1, le=900)


class OrderOut(BaseModel):
    id: int
    bill_number: str
    amount: str
    currency: str
    status: str
    payload: str
    expires_at: datetime

    @classmethod
    def of(cls, order: Order, payload: str) -> OrderOut:
        return cls(id=order.id, bill_number=order.bill_number, amount=money_text(order.amount),
                   currency=order.currency, status=order.status, payload=payload,
                   expires_at=to_datetime(order.expires_at_ns))  # fmt: skip


class ScanIn(Strict):
    payload: str = Field(max_length=512)
    card_id: IdField
    amount: str | None = Field(default=None, max_length=24)
    pin: str | None = Field(default=None, max_length=6)


class CollectIn(Strict):
    code: str = Field(max_length=512, description="The CPM payload or the 19-digit code.")
    amount: str = Field(max_length=24)
    terminal: str = Field(default="T0001", max_length=8)
    capture: bool = True
    hold_seconds: int = Field(default=7200, ge=60, le=7 * 24 * 3600)


class AmountIn(Strict):
    amount: str = Field(max_length=24)


class PaymentCodeOut(BaseModel):
    qr_payload: str
    numeric: str
    expires_at: datetime


class PaymentEventOut(BaseModel):
    status: str
    amount: str
    at: datetime
    detail: str | None

    @classmethod
    def of(cls, e: PaymentEvent) -> PaymentEventOut:
        return cls(status=e.status.value, amount=money_text(e.amount), at=to_datetime(e.at_ns),
                   detail=e.detail)  # fmt: skip


class PaymentOut(BaseModel):
    id: str
    kind: str
    status: str
    decline_reason: str | None
    amount: str
    amount_minor: int
    captured: str
    refunded: str
    currency: str
    card: str | None
    card_id: int | None
    merchant_id: int | None
    merchant: str | None
    terminal: str | None
    bill_number: str | None
    voucher: str | None
    pin_verified: bool
    two_phase: bool
    hold_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    history: list[PaymentEventOut] | None = None

    @classmethod
    def of(cls, p: Payment, history: list[PaymentEvent] | None = None) -> PaymentOut:
        """A payment (with its history, when given)."""
        hold = p.hold_expires_at_ns
        return cls(
            id=str(p.id),
            kind=p.kind.value,
            status=p.status.value,
            decline_reason=None if p.decline_reason is None else p.decline_reason.value,
            amount=money_text(p.amount),
            amount_minor=p.amount,
            captured=money_text(p.captured),
            refunded=money_text(p.refunded),
            currency=p.currency,
            card=p.card_display,
            card_id=p.wallet_card_id,
            merchant_id=p.merchant_id,
            merchant=p.merchant_name,
            terminal=p.terminal,
            bill_number=p.bill_number,
            voucher=p.voucher,
            pin_verified=p.pin_verified,
            two_phase=p.two_phase,
            hold_expires_at=None if hold is None else to_datetime(hold),
            created_at=to_datetime(p.created_at_ns),
            updated_at=to_datetime(p.updated_at_ns),
            history=None if history is None else [PaymentEventOut.of(e) for e in history],
        )


class LimitsIn(Strict):
    free_per_payment: str = Field(max_length=24)
    qr_daily_limit: str = Field(max_length=24)
    password: str = Field(max_length=128)
