"""Request and response shapes of the payment endpoints: P2P transfers and their receipts
(``/v1/transfers``), scan-to-pay, payment codes, merchant collection, holds and refunds
(``/v1/payments``), and the user's QR limits.

Amounts are decimal text (``flashpay.api.schemas``); 63-bit ids travel as strings.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from flashpay.api.schemas import Strict, money_text
from flashpay.api.types import IdField
from flashpay.clock import to_datetime
from flashpay.payments.attempts import Payment, PaymentEvent
from flashpay.payments.plans import Share
from flashpay.payments.transfer_records import P2PTransfer


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


class PromotionOut(BaseModel):
    """One campaign's part of a payment's discount, and who funded it."""

    campaign_id: int
    name: str
    funder_kind: str  # issuer | network | acquirer | merchant
    funder_id: int
    discount: str
    discount_minor: int

    @classmethod
    def of(cls, s: Share) -> PromotionOut:
        return cls(campaign_id=s.campaign_id, name=s.name, funder_kind=s.funder_kind,
                   funder_id=s.funder_id, discount=money_text(s.discount_minor),
                   discount_minor=s.discount_minor)  # fmt: skip


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
    # A QR payment's receipt: ``amount`` is the original amount; the cardholder paid ``paid``.
    original_amount: str | None = None
    discount: str | None = None
    paid: str | None = None
    promotions: list[PromotionOut] = Field(default_factory=list)


# -- QR payments ---------------------------------------------------------------------------------
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
    amount: str  # the original amount (what the merchant sold)
    amount_minor: int
    discount: str  # a promotion's discount (decision 0019); "0.00" without one
    discount_minor: int
    paid: str  # what the cardholder paid: amount - discount
    promotions: list[PromotionOut]  # the campaigns that paid the discount, and their funders
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
            discount=money_text(p.discount),
            discount_minor=p.discount,
            paid=money_text(p.paid),
            promotions=[PromotionOut.of(s) for s in p.promotions],
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
