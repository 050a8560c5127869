"""A card as the other domains see it: the ``Card`` record (no card number in it), its status,
its balance's shape, the expiry's form, and the refusals of the cards domain.

``card_from_mapping`` is the one reading of a ``cards`` row; ``lookups.card_from_view`` reads
the same columns under the cards' published labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from flashpay.errors import RefusedError
from flashpay.institutions.definition import CardType

CHINA_TIME = timedelta(hours=8)  # card expiry and daily limits follow Beijing time


class CardStatus(StrEnum):
    ACTIVE = "active"
    FROZEN = "frozen"
    CLOSED = "closed"


class CardRefusal(StrEnum):
    """Why a request about cards was refused, in the order the checks run (the expiry's form,
    then ``issue_cards``: the batch, each request's BIN, issuer, limit and amounts, then what is
    already recorded). The values are the API's error codes."""

    INVALID_EXPIRY = "invalid_expiry"
    BATCH_TOO_LARGE = "batch_too_large"
    UNKNOWN_BIN = "unknown_bin"
    BIN_NOT_YOURS = "bin_not_yours"
    INVALID_CREDIT_LIMIT = "invalid_credit_limit"
    INVALID_AMOUNT = "invalid_amount"
    CARD_EXISTS = "card_exists"


class CardError(RefusedError):
    """A request about a card that cannot be carried out; ``code`` is the API error code.
    ``index`` is the refused request's position in an ``issue_cards`` batch (``None`` for a
    single card; also in ``details``), and ``unindexed_message`` the message without that
    position."""

    reason: CardRefusal

    def __init__(self, reason: CardRefusal, message: str, *, index: int | None = None) -> None:
        super().__init__(
            reason,
            message if index is None else f"requests[{index}]: {message}",
            details=None if index is None else {"index": index},
        )
        self.index = index
        self.unindexed_message = message


@dataclass(frozen=True, slots=True)
class Card:
    """An issued card, without its number."""

    id: int
    issuer_id: int
    first6: str
    last4: str
    pan_length: int
    card_type: CardType
    expiry: str  # YYMM
    status: CardStatus
    holder_name: str
    holder_id_fingerprint: bytes
    phone: str
    ledger_account_id: int
    credit_limit: int
    statement_day: int | None

    @property
    def masked(self) -> str:
        return f"{self.first6}{'*' * (self.pan_length - 10)}{self.last4}"


@dataclass(frozen=True, slots=True)
class IssuedCard:
    card: Card
    cvv: str  # shown once to the issuer that asked, never stored


@dataclass(frozen=True, slots=True)
class CardBalance:
    """Debit: ``available`` and ``ledger``. Credit: ``credit_limit``, ``available`` credit,
    ``outstanding`` and ``pending`` authorizations. Integers in fen."""

    card_type: CardType
    available: int
    ledger: int | None = None
    credit_limit: int | None = None
    outstanding: int | None = None
    pending: int | None = None


def parse_expiry(text: str) -> str:
    """``MM/YY``, ``MMYY`` or ``YYMM``-with-a-slash-free form is ambiguous, so the API takes
    ``MM/YY`` (as printed on the card) and we store ``YYMM``."""
    month, sep, year = text.partition("/")
    if not (sep and len(month) == 2 and len(year) == 2 and (month + year).isdigit()):
        raise CardError(CardRefusal.INVALID_EXPIRY, "the expiry date is MM/YY")
    if not 1 <= int(month) <= 12:
        raise CardError(CardRefusal.INVALID_EXPIRY, "the expiry month is 01–12")
    return year + month


def is_expired(expiry: str, now_ns: int) -> bool:
    """A card is valid through the last day of its expiry month (Beijing time)."""
    now = datetime.fromtimestamp(now_ns / 1e9, UTC) + CHINA_TIME
    return (now.year % 100, now.month) > (int(expiry[:2]), int(expiry[2:]))


def card_from_row(row: sa.Row[tuple[object, ...]]) -> Card:
    """A ``Card`` from a row holding the ``cards`` columns (also from joins)."""
    return card_from_mapping(row._mapping)


def card_from_mapping(m: Mapping[Any, Any], *, prefix: str = "") -> Card:
    """A ``Card`` from the ``cards`` columns by name, each name after ``prefix`` (``"card_"``
    for the labels of ``lookups.card_view``): read in place, no per-row copy of the mapping."""
    p = prefix
    statement_day = m[p + "statement_day"]
    return Card(
        id=int(m[p + "id"]),
        issuer_id=int(m[p + "issuer_id"]),
        first6=str(m[p + "pan_first6"]),
        last4=str(m[p + "pan_last4"]),
        pan_length=int(m[p + "pan_length"]),
        card_type=CardType(m[p + "card_type"]),
        expiry=str(m[p + "expiry"]),
        status=CardStatus(m[p + "status"]),
        holder_name=str(m[p + "holder_name"]),
        holder_id_fingerprint=bytes(m[p + "holder_id_fingerprint"]),
        phone=str(m[p + "phone"]),
        ledger_account_id=int(m[p + "ledger_account_id"]),
        credit_limit=int(m[p + "credit_limit"]),
        statement_day=None if statement_day is None else int(statement_day),
    )
