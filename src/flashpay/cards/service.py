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
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from hashlib import sha256
from typing import Any

import sqlalchemy as sa

from flashpay.cards.models import card_tokens, cards
from flashpay.cards.numbers import CardNumber, generate_card_number
from flashpay.cards.routing import route_cards
from flashpay.db import autocommit
from flashpay.errors import RefusedError
from flashpay.institutions.chart import (
    LEDGER_CNY,
    AccountCode,
    TransferCode,
    institution_account_id,
)
from flashpay.institutions.definition import CardType
from flashpay.institutions.service import Institution, network_institution
from flashpay.ledger import (
    BATCH_EVENTS_MAX,
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


def card_from_mapping(m: Mapping[Any, Any]) -> Card:
    """A ``Card`` from the ``cards`` columns by name."""
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


def pan_fingerprint(platform: Platform, card: CardNumber) -> bytes:
    """The keyed hash a card is found by: the vault's one recipe (nothing is decrypted)."""
    return platform.keys.fingerprint("pan", card.reveal())


def id_fingerprint(platform: Platform, id_number: str) -> bytes:
    """The keyed hash of a national ID number (stored instead of the number)."""
    return platform.keys.fingerprint("id-number", id_number.strip().upper())


ISSUE_BATCH_MAX = BATCH_EVENTS_MAX  # one ledger batch holds a whole card file's accounts
FINGERPRINTS_PER_QUERY_MAX = 500  # card look-ups by fingerprint per IN (...) query
IDS_PER_QUERY_MAX = 500  # card look-ups by id per IN (...) query


@dataclass(frozen=True, slots=True)
class CardIssue:
    """One card of an issuer's card file, to record with ``issue_cards``. ``expiry`` is
    ``YYMM``; amounts are fen: a debit card takes ``opening_balance``, a credit card
    ``credit_limit``."""

    card: CardNumber
    expiry: str
    holder_name: str
    holder_id_number: str = field(repr=False)  # a national ID number stays out of logs
    phone: str
    credit_limit: int = 0
    opening_balance: int = 0
    statement_day: int | None = None


@dataclass(frozen=True, slots=True)
class _Planned:
    """A validated request, with what recording it writes (or finds already written)."""

    index: int
    request: CardIssue
    card_type: CardType
    fingerprint: bytes
    account: Account
    deposit: Transfer  # its id is checked even when there is nothing to deposit


# RETURNING the fingerprint, not sort_by_parameter_order: SQLite cannot promise the order of a
# multi-row INSERT's RETURNING, and SQLAlchemy would fall back to one INSERT per row.
_INSERT_CARDS = cards.insert().returning(cards.c.id, cards.c.pan_fingerprint)
_CARDS_BY_FINGERPRINT = sa.select(cards).where(
    cards.c.pan_fingerprint.in_(sa.bindparam("fingerprints", expanding=True))
)


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
    """Record one card ``issuer`` has issued: ``issue_cards`` with a batch of one (its refusal
    names no index)."""
    request = CardIssue(
        card=card,
        expiry=expiry,
        holder_name=holder_name,
        holder_id_number=holder_id_number,
        phone=phone,
        credit_limit=credit_limit,
        opening_balance=opening_balance,
        statement_day=statement_day,
    )
    try:
        [issued] = issue_cards(platform=platform, issuer=issuer, requests=[request])
    except CardError as exc:
        raise CardError(exc.reason, exc.unindexed_message) from None
    return issued


def issue_cards(
    *, platform: Platform, issuer: Institution, requests: Sequence[CardIssue]
) -> list[IssuedCard]:
    """Record cards ``issuer`` has issued (numbers in its BIN ranges) and open their ledger
    accounts: a deposit with its ``opening_balance`` (debit) or a credit line with its
    ``credit_limit`` (credit). One ``IssuedCard`` per request, in order.

    A bank loads its card file in one go: every request is validated first, then one
    ``ledger.create_accounts`` opens all the accounts, one ``ledger.create_transfers`` posts all
    the opening deposits, and one transaction inserts all the card records. **All or nothing:**
    a bad request raises ``CardError`` with its ``index`` (and ``requests[i]: `` in the message)
    and nothing of the batch is written. The checks run request by request in the reference's
    order (BIN, issuer, limit, amounts), then for the same number twice in the batch, then
    against what is already recorded (another expiry, phone, limit or opening balance for a
    known number: ``card_exists``) — all before any write. Only a concurrent recording of the
    same number between those checks and the writes can still be refused after the ledger part
    (as ``issue_card`` always could); what it leaves is empty accounts and deposits whose ids
    derive from the card numbers, which the corrected retry reuses.

    Idempotent for the same number and details: a known card comes back as recorded (with its
    current status), and its account and deposit are not touched again. The same number twice in
    one batch is recorded once; twice with other details is ``card_exists`` at the second.
    """
    if len(requests) > ISSUE_BATCH_MAX:
        raise CardError(CardRefusal.BATCH_TOO_LARGE, f"at most {ISSUE_BATCH_MAX} cards per batch")
    planned = _plan(platform, issuer, requests)
    firsts: dict[bytes, _Planned] = {}
    for plan in planned:
        first = firsts.setdefault(plan.fingerprint, plan)
        if first is not plan and _terms(first.request) != _terms(plan.request):
            raise CardError(CardRefusal.CARD_EXISTS, _OTHER_TERMS, index=plan.index)
    unique = list(firsts.values())
    recorded = _recorded(platform, [p.fingerprint for p in unique])
    accounts = {a.id: a for a in platform.ledger.lookup_accounts([p.account.id for p in unique])}
    deposits = {t.id: t for t in platform.ledger.lookup_transfers([p.deposit.id for p in unique])}
    for plan in unique:
        _check_known(plan, recorded.get(plan.fingerprint), accounts, deposits)
    # The checks are done: from here on the batch is written.
    new_accounts = [p for p in unique if p.account.id not in accounts]
    opened = (
        platform.ledger.create_accounts([p.account for p in new_accounts]) if new_accounts else []
    )
    for plan, result in zip(new_accounts, opened, strict=True):
        if result not in (CreateAccountResult.OK, CreateAccountResult.EXISTS):
            raise CardError(CardRefusal.CARD_EXISTS, f"{_OTHER_TERMS} ({result})", index=plan.index)
    new_deposits = [p for p in unique if p.request.opening_balance and p.deposit.id not in deposits]
    posted = (
        platform.ledger.create_transfers([p.deposit for p in new_deposits]) if new_deposits else []
    )
    for plan, outcome in zip(new_deposits, posted, strict=True):
        if outcome not in (CreateTransferResult.OK, CreateTransferResult.EXISTS):
            message = f"the opening deposit was refused ({outcome})"
            raise CardError(CardRefusal.CARD_EXISTS, message, index=plan.index)
    new_cards = [p for p in unique if p.fingerprint not in recorded]
    if new_cards:
        now = platform.clock.now_ns()
        made = [_new_card(platform, issuer, p) for p in new_cards]
        rows = [_card_row(platform, c, p, now) for c, p in zip(made, new_cards, strict=True)]
        try:
            with platform.engine.begin() as connection:
                ids = {
                    bytes(row.pan_fingerprint): int(row.id)
                    for row in connection.execute(_INSERT_CARDS, rows)
                }
        except sa.exc.IntegrityError as exc:
            raise CardError(
                CardRefusal.CARD_EXISTS, "this card number is already recorded"
            ) from exc
        for plan, card in zip(new_cards, made, strict=True):
            recorded[plan.fingerprint] = replace(card, id=ids[plan.fingerprint])
    return [
        IssuedCard(recorded[p.fingerprint], compute_cvv(platform, p.request.card, p.request.expiry))
        for p in planned
    ]


_OTHER_TERMS = "this card number is recorded with other terms"


def _terms(request: CardIssue) -> tuple[str, str, int, int]:
    """What a second recording of a number must repeat (the rest is the issuer's to keep)."""
    return (request.expiry, request.phone, request.credit_limit, request.opening_balance)


def _plan(platform: Platform, issuer: Institution, requests: Sequence[CardIssue]) -> list[_Planned]:
    """Validate every request (in order; the first refusal names its index) and work out the
    ledger account and opening deposit each one needs. Reads only the BIN table."""
    routes = route_cards(platform=platform, cards=[r.card for r in requests])
    planned: list[_Planned] = []
    for index, (request, route) in enumerate(zip(requests, routes, strict=True)):
        if route is None:
            raise CardError(
                CardRefusal.UNKNOWN_BIN, "no issuer owns this card number's BIN", index=index
            )
        if route.institution.id != issuer.id:
            raise CardError(
                CardRefusal.BIN_NOT_YOURS, "this BIN belongs to another issuer", index=index
            )
        credit = route.card_type is CardType.CREDIT
        limit, balance = request.credit_limit, request.opening_balance
        if credit and limit <= 0:
            raise CardError(
                CardRefusal.INVALID_CREDIT_LIMIT,
                "a credit card needs a positive credit limit",
                index=index,
            )
        if (not credit and limit) or balance < 0 or (credit and balance):
            raise CardError(
                CardRefusal.INVALID_AMOUNT,
                "debit cards take an opening balance, credit a limit",
                index=index,
            )
        fingerprint = pan_fingerprint(platform, request.card)
        account_id = derive_id("flashpay.card-account", fingerprint.hex())
        account = Account(
            account_id,
            LEDGER_CNY,
            AccountCode.CUSTOMER_CREDIT_LINE if credit else AccountCode.CUSTOMER_DEPOSIT,
            flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS,
            credit_limit=limit,
            user_data_64=issuer.id,
        )
        deposit = Transfer(
            derive_id("flashpay.opening-deposit", str(account_id)),
            institution_account_id(issuer.code, AccountCode.CASH),
            account_id,
            balance,
            LEDGER_CNY,
            TransferCode.OPENING_DEPOSIT,
        )
        planned.append(_Planned(index, request, route.card_type, fingerprint, account, deposit))
    return planned


def _recorded(platform: Platform, fingerprints: Sequence[bytes]) -> dict[bytes, Card]:
    """The recorded cards among ``fingerprints``, by fingerprint."""
    found: dict[bytes, Card] = {}
    with autocommit(platform.engine) as connection:
        for start in range(0, len(fingerprints), FINGERPRINTS_PER_QUERY_MAX):
            chunk = list(fingerprints[start : start + FINGERPRINTS_PER_QUERY_MAX])
            for row in connection.execute(_CARDS_BY_FINGERPRINT, {"fingerprints": chunk}):
                found[bytes(row.pan_fingerprint)] = card_from_row(row)
    return found


def _check_known(
    plan: _Planned,
    card: Card | None,
    accounts: Mapping[int, Account],
    deposits: Mapping[int, Transfer],
) -> None:
    """Refuse (``card_exists``) a number already recorded, or half-recorded by an interrupted
    call, with other terms than ``plan``'s: another expiry, phone, limit or opening balance."""
    request = plan.request
    if card is not None and (card.expiry, card.phone, card.credit_limit) != (
        request.expiry,
        request.phone,
        request.credit_limit,
    ):
        raise CardError(CardRefusal.CARD_EXISTS, _OTHER_TERMS, index=plan.index)
    account = accounts.get(plan.account.id)
    if account is not None and (account.code, account.credit_limit, account.user_data_64) != (
        plan.account.code,
        plan.account.credit_limit,
        plan.account.user_data_64,
    ):
        raise CardError(CardRefusal.CARD_EXISTS, _OTHER_TERMS, index=plan.index)
    deposit = deposits.get(plan.deposit.id)
    deposited = 0 if deposit is None else deposit.amount
    # A recorded card's deposit is complete; a half-recorded one's may still be missing.
    if (card is not None or deposit is not None) and deposited != request.opening_balance:
        raise CardError(CardRefusal.CARD_EXISTS, _OTHER_TERMS, index=plan.index)


def _new_card(platform: Platform, issuer: Institution, plan: _Planned) -> Card:
    """The ``Card`` record a new request makes (``id`` 0 until its row is inserted)."""
    request = plan.request
    return Card(
        id=0,
        issuer_id=issuer.id,
        first6=request.card.first6,
        last4=request.card.last4,
        pan_length=len(request.card.reveal()),
        card_type=plan.card_type,
        expiry=request.expiry,
        status=CardStatus.ACTIVE,
        holder_name=request.holder_name,
        holder_id_fingerprint=id_fingerprint(platform, request.holder_id_number),
        phone=request.phone,
        ledger_account_id=plan.account.id,
        credit_limit=request.credit_limit,
        statement_day=request.statement_day,
    )


def _card_row(platform: Platform, card: Card, plan: _Planned, now_ns: int) -> dict[str, object]:
    """The ``cards`` row of ``card``: its number sealed under the vault's active key, bound to
    its fingerprint as associated data."""
    key_id, ciphertext = platform.keys.encrypt(
        plan.request.card.reveal().encode(), context=plan.fingerprint
    )
    return {
        "issuer_id": card.issuer_id,
        "pan_key_id": key_id,
        "pan_ciphertext": ciphertext,
        "pan_fingerprint": plan.fingerprint,
        "pan_first6": card.first6,
        "pan_last4": card.last4,
        "pan_length": card.pan_length,
        "card_type": card.card_type.value,
        "expiry": card.expiry,
        "status": card.status.value,
        "holder_name": card.holder_name,
        "holder_id_fingerprint": card.holder_id_fingerprint,
        "phone": card.phone,
        "ledger_account_id": card.ledger_account_id,
        "credit_limit": card.credit_limit,
        "statement_day": card.statement_day,
        "created_at_ns": now_ns,
    }


def find_card(
    *, platform: Platform, card: CardNumber, connection: sa.Connection | None = None
) -> Card | None:
    """The issued card with this number, found by its fingerprint (nothing is decrypted).
    With ``connection``, read in the caller's transaction (the wallet's binding checks)."""
    query = sa.select(cards).where(cards.c.pan_fingerprint == pan_fingerprint(platform, card))
    if connection is not None:
        row = connection.execute(query).first()
    else:
        with autocommit(platform.engine) as own:
            row = own.execute(query).first()
    return None if row is None else card_from_row(row)


def get_card(
    *, platform: Platform, card_id: int, connection: sa.Connection | None = None
) -> Card | None:
    """The card with this id; with ``connection``, read in the caller's transaction."""
    if connection is not None:
        return cards_by_id(connection=connection, card_ids=[card_id]).get(card_id)
    with autocommit(platform.engine) as own:
        return cards_by_id(connection=own, card_ids=[card_id]).get(card_id)


_CARDS_BY_ID = sa.select(cards).where(cards.c.id.in_(sa.bindparam("b_card_ids", expanding=True)))


def cards_by_id(*, connection: sa.Connection, card_ids: Collection[int]) -> dict[int, Card]:
    """The cards with these ids, by id (unknown ids are left out), read in the caller's
    transaction: one query per ``IDS_PER_QUERY_MAX`` distinct ids."""
    ids = sorted(set(card_ids))
    found: dict[int, Card] = {}
    for start in range(0, len(ids), IDS_PER_QUERY_MAX):
        chunk = ids[start : start + IDS_PER_QUERY_MAX]
        for row in connection.execute(_CARDS_BY_ID, {"b_card_ids": chunk}):
            found[int(row.id)] = card_from_row(row)
    return found


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


_INSERT_TOKENS = card_tokens.insert()


def record_token(
    *, platform: Platform, connection: sa.Connection, card_id: int, token_bin: str | None = None
) -> str:
    """Draw a network token for ``card_id`` and record it in the caller's transaction (so a
    binding and its token commit together): ``record_tokens`` for one card."""
    [token] = record_tokens(
        platform=platform, connection=connection, card_ids=[card_id], token_bin=token_bin
    )
    return token


def record_tokens(
    *,
    platform: Platform,
    connection: sa.Connection,
    card_ids: Sequence[int],
    token_bin: str | None = None,
) -> list[str]:
    """Draw a network token per card in the network's token BIN range and record them in the
    caller's transaction, in one statement; the tokens in the order of ``card_ids``.
    ``token_bin`` saves the look-up when the caller read it already. Tokens are distinct within
    the call; a collision with a recorded one (among 10^12 numbers) fails the transaction, and
    the caller's retry draws again."""
    if token_bin is None:
        token_bin = network_institution(platform=platform).token_bin
    drawn: set[str] = set()
    while len(drawn) < len(card_ids):
        drawn.add(generate_card_number(token_bin or "623123", TOKEN_DIGITS).reveal())
    tokens = list(drawn)
    now = platform.clock.now_ns()
    connection.execute(
        _INSERT_TOKENS,
        [
            {"token": token, "card_id": card_id, "created_at_ns": now}
            for token, card_id in zip(tokens, card_ids, strict=True)
        ],
    )
    return tokens
