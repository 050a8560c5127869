"""Request and response shapes of the wallet: users, sessions, the payment PIN, bound cards and
their balances (``/v1/users``, ``/v1/sessions``, ``/v1/me``), and issuer enrolment
(``POST /v1/issuer/enrolments``).

Enrolment names cards by the ids the network gave them when the issuer recorded them
(``POST /v1/issuer/cards``), never by their numbers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from flashpay.api.schemas import Strict, money_text
from flashpay.cards.service import CardBalance
from flashpay.clock import to_datetime
from flashpay.wallet.binding import Binding
from flashpay.wallet.cards import WalletCard
from flashpay.wallet.enrolment import ENROL_BATCH_MAX
from flashpay.wallet.registration import User
from flashpay.wallet.sessions import Session


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


# -- issuer enrolment ---------------------------------------------------------------------------
CARD_ID_MAX = 2**63 - 1  # a BIGINT

# Strict: a JSON integer only, so a card number sent as a string is refused, not looked up.
CardId = Annotated[int, Field(strict=True, ge=1, le=CARD_ID_MAX)]


class EnrolmentIn(Strict):
    card_ids: list[CardId] = Field(
        min_length=1,
        max_length=ENROL_BATCH_MAX,
        description=f"Ids of cards this issuer recorded; at most {ENROL_BATCH_MAX}.",
    )


class EnrolledCardOut(BaseModel):
    index: int = Field(description="The card's position in card_ids.")
    card_id: int
    masked_number: str
    wallet_card_id: int
    is_default: bool
    bound_at: datetime

    @classmethod
    def of(cls, index: int, wallet_card: WalletCard) -> EnrolledCardOut:
        return cls(
            index=index,
            card_id=wallet_card.card.id,
            masked_number=wallet_card.card.masked,
            wallet_card_id=wallet_card.id,
            is_default=wallet_card.is_default,
            bound_at=to_datetime(wallet_card.bound_at_ns),
        )


class EnrolmentOut(BaseModel):
    cards: int = Field(description="How many cards are in their holders' wallets now.")
    results: list[EnrolledCardOut] = Field(description="One per card id, in the request's order.")
