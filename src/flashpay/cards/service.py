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

This module is the cards domain's face: reading cards (by number, by id), their status and
balance, and the network tokens; it re-exports what the domain's other modules define so that
callers import one place. The record and its refusals are ``records``, the vault's recipes
``vault``, recording an issuer's cards ``issuing``; the other domains' reads in their own
connection ``lookups``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import sqlalchemy as sa

from flashpay.cards.issuing import ISSUE_BATCH_MAX, CardIssue, issue_card, issue_cards
from flashpay.cards.models import card_tokens, cards
from flashpay.cards.numbers import CardNumber, generate_card_number
from flashpay.cards.records import (
    CHINA_TIME,
    Card,
    CardBalance,
    CardError,
    CardRefusal,
    CardStatus,
    IssuedCard,
    card_from_mapping,
    card_from_row,
    is_expired,
    parse_expiry,
)
from flashpay.cards.vault import (
    compute_cvv,
    cvv_matches,
    id_fingerprint,
    pan_fingerprint,
    reveal_card_number,
)
from flashpay.db import autocommit
from flashpay.institutions.definition import CardType
from flashpay.institutions.service import network_institution
from flashpay.platform import Platform

__all__ = [
    "CHINA_TIME",
    "ISSUE_BATCH_MAX",
    "Card",
    "CardBalance",
    "CardError",
    "CardIssue",
    "CardRefusal",
    "CardStatus",
    "CardType",
    "IssuedCard",
    "card_balance",
    "card_from_mapping",
    "card_from_row",
    "cards_by_id",
    "compute_cvv",
    "cvv_matches",
    "find_card",
    "get_card",
    "id_fingerprint",
    "is_expired",
    "issue_card",
    "issue_cards",
    "pan_fingerprint",
    "parse_expiry",
    "record_token",
    "record_tokens",
    "reveal_card_number",
    "set_card_status",
]

TOKEN_DIGITS = 19
IDS_PER_QUERY_MAX = 500  # card look-ups by id per IN (...) query


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
