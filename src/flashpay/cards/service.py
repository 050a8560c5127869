"""The issuers' cards: issue (record) a card, find it by number or token, authorize, balance.

A card's number is stored only encrypted (``KeyRing.encrypt`` with the card's fingerprint as
associated data) beside a keyed fingerprint for look-ups; everything else works on the ``Card``
record, which holds no card number. The CVV is *computed* from the issuer's card verification key
(an HMAC over number, expiry and service code, as a card's CVV is derived from the issuer's CVK),
so it is checked at binding and never stored anywhere.

Debit cards are backed by a ``customer_deposit`` ledger account that must not go negative; credit
cards by a ``customer_credit_line`` whose outstanding may not pass the credit limit. The ledger
enforces both atomically, so authorization here checks only what the ledger cannot: status and
expiry.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from hashlib import sha256

import sqlalchemy as sa

from flashpay.cards.models import card_tokens, cards
from flashpay.cards.numbers import CardNumber, generate_card_number
from flashpay.db import autocommit
from flashpay.institutions.chart import (
    LEDGER_CNY,
    AccountCode,
    TransferCode,
    institution_account_id,
)
from flashpay.institutions.definition import CardType
from flashpay.institutions.service import Institution, network_institution, route_card
from flashpay.ledger import (
    Account,
    AccountFlags,
    CreateAccountResult,
    CreateTransferResult,
    Transfer,
)
from flashpay.ledger.ids import derive_id
from flashpay.platform import Platform

CHINA_TIME = timedelta(hours=8)  # card expiry and daily limits follow Beijing time
TOKEN_DIGITS = 19
SERVICE_CODE = "201"


class CardStatus(StrEnum):
    ACTIVE = "active"
    FROZEN = "frozen"
    CLOSED = "closed"


class CardError(ValueError):
    """A request about a card that cannot be carried out; ``code`` is the API error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


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


def compute_cvv(platform: Platform, card: CardNumber, expiry: str) -> str:
    message = f"{card.reveal()}|{expiry}|{SERVICE_CODE}".encode()
    digest = hmac.new(platform.keys.cvv_key, message, sha256).digest()
    return f"{int.from_bytes(digest[:4], 'big') % 1000:03d}"


def cvv_matches(platform: Platform, card: CardNumber, expiry: str, cvv: str) -> bool:
    return hmac.compare_digest(compute_cvv(platform, card, expiry), cvv)


def parse_expiry(text: str) -> str:
    """``MM/YY``, ``MMYY`` or ``YYMM``-with-a-slash-free form is ambiguous, so the API takes
    ``MM/YY`` (as printed on the card) and we store ``YYMM``."""
    month, sep, year = text.partition("/")
    if not (sep and len(month) == 2 and len(year) == 2 and (month + year).isdigit()):
        raise CardError("invalid_expiry", "the expiry date is MM/YY")
    if not 1 <= int(month) <= 12:
        raise CardError("invalid_expiry", "the expiry month is 01–12")
    return year + month


def is_expired(expiry: str, now_ns: int) -> bool:
    """A card is valid through the last day of its expiry month (Beijing time)."""
    now = datetime.fromtimestamp(now_ns / 1e9, UTC) + CHINA_TIME
    return (now.year % 100, now.month) > (int(expiry[:2]), int(expiry[2:]))


def card_from_row(row: sa.Row[tuple[object, ...]]) -> Card:
    """A ``Card`` from a row holding the ``cards`` columns (also from joins)."""
    m = row._mapping
    return Card(
        id=int(m["id"]),
        issuer_id=int(m["issuer_id"]),
        first6=str(m["pan_first6"]),
        last4=str(m["pan_last4"]),
        pan_length=int(m["pan_length"]),
        card_type=CardType(m["card_type"]),
        expiry=str(m["expiry"]),
        status=CardStatus(m["status"]),
        holder_name=str(m["holder_name"]),
        holder_id_fingerprint=bytes(m["holder_id_fingerprint"]),
        phone=str(m["phone"]),
        ledger_account_id=int(m["ledger_account_id"]),
        credit_limit=int(m["credit_limit"]),
        statement_day=None if m["statement_day"] is None else int(m["statement_day"]),
    )


def _fingerprint(platform: Platform, card: CardNumber) -> bytes:
    return platform.keys.fingerprint("pan", card.reveal())


def id_fingerprint(platform: Platform, id_number: str) -> bytes:
    """The keyed hash of a national ID number (stored instead of the number)."""
    return platform.keys.fingerprint("id-number", id_number.strip().upper())


def issue_card(
    *,
    platform: Platform,
    issuer: Institution,
    card: CardNumber,
    expiry: str,
    holder_name: str,
    holder_id_number: str,
    phone: str,
    credit_limit: int = 0,
    opening_balance: int = 0,
    statement_day: int | None = None,
) -> IssuedCard:
    """Record a card ``issuer`` has issued (its number in one of the issuer's BIN ranges) and open
    its ledger account: a deposit with ``opening_balance`` (debit) or a credit line with
    ``credit_limit`` (credit). Idempotent for the same number and details."""
    route = route_card(platform=platform, card=card)
    if route is None:
        raise CardError("unknown_bin", "no issuer owns this card number's BIN")
    if route.institution.id != issuer.id:
        raise CardError("bin_not_yours", "this BIN belongs to another issuer")
    credit = route.card_type is CardType.CREDIT
    if credit and credit_limit <= 0:
        raise CardError("invalid_credit_limit", "a credit card needs a positive credit limit")
    if (not credit and credit_limit) or opening_balance < 0 or (credit and opening_balance):
        raise CardError("invalid_amount", "debit cards take an opening balance, credit a limit")
    fingerprint = _fingerprint(platform, card)
    account_id = derive_id("flashpay.card-account", fingerprint.hex())
    account = Account(
        account_id,
        LEDGER_CNY,
        AccountCode.CUSTOMER_CREDIT_LINE if credit else AccountCode.CUSTOMER_DEPOSIT,
        flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS,
        credit_limit=credit_limit,
        user_data_64=issuer.id,
    )
    [opened] = platform.ledger.create_accounts([account])
    if opened not in (CreateAccountResult.OK, CreateAccountResult.EXISTS):
        raise CardError("card_exists", f"this card exists with other terms ({opened})")
    if opening_balance:
        cash = institution_account_id(issuer.code, AccountCode.CASH)
        deposit = Transfer(
            derive_id("flashpay.opening-deposit", str(account_id)),
            cash,
            account_id,
            opening_balance,
            LEDGER_CNY,
            TransferCode.OPENING_DEPOSIT,
        )
        [posted] = platform.ledger.create_transfers([deposit])
        if posted not in (CreateTransferResult.OK, CreateTransferResult.EXISTS):
            raise CardError("card_exists", f"the opening deposit was refused ({posted})")
    key_id, ciphertext = platform.keys.encrypt(card.reveal().encode(), context=fingerprint)
    values = {
        "issuer_id": issuer.id,
        "pan_key_id": key_id,
        "pan_ciphertext": ciphertext,
        "pan_fingerprint": fingerprint,
        "pan_first6": card.first6,
        "pan_last4": card.last4,
        "pan_length": len(card.reveal()),
        "card_type": route.card_type.value,
        "expiry": expiry,
        "status": CardStatus.ACTIVE.value,
        "holder_name": holder_name,
        "holder_id_fingerprint": id_fingerprint(platform, holder_id_number),
        "phone": phone,
        "ledger_account_id": account_id,
        "credit_limit": credit_limit,
        "statement_day": statement_day,
        "created_at_ns": platform.clock.now_ns(),
    }
    with platform.engine.begin() as connection:
        existing = connection.execute(
            sa.select(cards).where(cards.c.pan_fingerprint == fingerprint)
        ).first()
        if existing is None:
            try:
                connection.execute(cards.insert().values(**values))
            except sa.exc.IntegrityError as exc:
                raise CardError("card_exists", "this card number is already recorded") from exc
        row = connection.execute(
            sa.select(cards).where(cards.c.pan_fingerprint == fingerprint)
        ).one()
    recorded = card_from_row(row)
    if existing is not None and (recorded.expiry, recorded.phone) != (expiry, phone):
        raise CardError("card_exists", "this card number is already recorded")
    return IssuedCard(recorded, compute_cvv(platform, card, expiry))


def find_card(*, platform: Platform, card: CardNumber) -> Card | None:
    """The issued card with this number, found by its fingerprint (nothing is decrypted)."""
    with autocommit(platform.engine) as connection:
        row = connection.execute(
            sa.select(cards).where(cards.c.pan_fingerprint == _fingerprint(platform, card))
        ).first()
    return None if row is None else card_from_row(row)


def get_card(*, platform: Platform, card_id: int) -> Card | None:
    with autocommit(platform.engine) as connection:
        row = connection.execute(sa.select(cards).where(cards.c.id == card_id)).first()
    return None if row is None else card_from_row(row)


def reveal_card_number(*, platform: Platform, card_id: int) -> CardNumber:
    """Decrypt a card's number (issuer operations only; never returned by the API)."""
    with platform.engine.connect() as connection:
        row = connection.execute(
            sa.select(cards.c.pan_key_id, cards.c.pan_ciphertext, cards.c.pan_fingerprint).where(
                cards.c.id == card_id
            )
        ).one()
    plain = platform.keys.decrypt(
        int(row.pan_key_id), bytes(row.pan_ciphertext), context=bytes(row.pan_fingerprint)
    )
    return CardNumber(plain.decode())


def set_card_status(*, platform: Platform, card_id: int, status: CardStatus) -> Card | None:
    """The issuer freezes, unfreezes or closes a card (a closed card stays closed)."""
    with platform.engine.begin() as connection:
        connection.execute(
            cards.update()
            .where(cards.c.id == card_id, cards.c.status != CardStatus.CLOSED.value)
            .values(status=status.value)
        )
    return get_card(platform=platform, card_id=card_id)


def card_balance(*, platform: Platform, card: Card) -> CardBalance:
    [account] = platform.ledger.lookup_accounts([card.ledger_account_id])
    if card.card_type is CardType.DEBIT:
        posted = account.credits_posted - account.debits_posted
        return CardBalance(
            card_type=card.card_type, available=posted - account.debits_pending, ledger=posted
        )
    outstanding = account.debits_posted - account.credits_posted
    pending = account.debits_pending
    return CardBalance(
        card_type=card.card_type,
        available=account.credit_limit - outstanding - pending,
        credit_limit=account.credit_limit,
        outstanding=outstanding,
        pending=pending,
    )


def record_token(*, platform: Platform, connection: sa.Connection, card_id: int) -> str:
    """Draw a network token for ``card_id`` in the network's token BIN range and record it in
    the caller's transaction (so a binding and its token commit together). A collision among
    10^12 numbers fails the transaction, and the caller's retry draws again."""
    token_bin = network_institution(platform=platform).token_bin or "623123"
    token = generate_card_number(token_bin, TOKEN_DIGITS).reveal()
    connection.execute(
        card_tokens.insert().values(
            token=token, card_id=card_id, created_at_ns=platform.clock.now_ns()
        )
    )
    return token
