"""Issuing: an issuer records the cards it has issued, one or a whole card file at a time, and
their ledger accounts open with them (a deposit with its opening balance, or a credit line with
its limit). All or nothing per batch, idempotent per number; see ``issue_cards``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import sqlalchemy as sa

from flashpay.cards.models import cards
from flashpay.cards.numbers import CardNumber
from flashpay.cards.records import (
    Card,
    CardError,
    CardRefusal,
    CardStatus,
    IssuedCard,
    card_from_row,
)
from flashpay.cards.routing import route_cards
from flashpay.cards.vault import compute_cvv, id_fingerprint, pan_fingerprint
from flashpay.db import autocommit
from flashpay.institutions.chart import (
    LEDGER_CNY,
    AccountCode,
    TransferCode,
    institution_account_id,
)
from flashpay.institutions.definition import CardType
from flashpay.institutions.service import Institution
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

ISSUE_BATCH_MAX = BATCH_EVENTS_MAX  # one ledger batch holds a whole card file's accounts
FINGERPRINTS_PER_QUERY_MAX = 500  # card look-ups by fingerprint per IN (...) query


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
