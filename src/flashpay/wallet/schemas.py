"""Request and response shapes of issuer enrolment (``POST /v1/issuer/enrolments``).

The other wallet shapes live in ``flashpay.api.schemas``; these sit with the wallet so the
enrolment endpoint is one package's business. Cards are named by the ids the network gave them
when the issuer recorded them (``POST /v1/issuer/cards``), never by their numbers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from flashpay.api.schemas import Strict
from flashpay.clock import to_datetime
from flashpay.wallet.cards import WalletCard
from flashpay.wallet.enrolment import ENROL_BATCH_MAX

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
