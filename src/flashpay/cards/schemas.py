"""Request and response shapes of the issuer's card endpoints (``/v1/issuer/cards``).

The card number comes in once, in ``IssueCardIn.card_number``, and goes out only masked; the CVV
is shown once, when the card is issued.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from flashpay.api.schemas import Strict, money_text
from flashpay.cards.service import Card


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
