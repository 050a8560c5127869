"""Request and response shapes of the acquirer's and the merchant's endpoints: onboarding,
terminals and dynamic-QR orders (``/v1/acquirer/merchants``, ``/v1/merchant``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from flashpay.api.schemas import Strict, money_text
from flashpay.clock import to_datetime
from flashpay.merchants.service import Merchant, Order


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
