"""P2P transfers: from a bound card to another wallet user (by phone) or to any card number.

A transfer is a record with a state machine, ``created → completed | declined``, and one linked
chain of ledger postings (ARCHITECTURE.md §4): same bank, sender deposit → receiver account;
cross-bank, sender → sender issuer's ``network_payable`` → network (``issuer_receivable`` /
``issuer_payable``) → receiver issuer's ``network_receivable`` → receiver.

Order of checks, and so of decline reasons: the PIN (``pin_locked``, ``pin_not_set``,
``wrong_pin``), the sending card (``card_frozen``, ``card_closed``, ``card_expired``), the
recipient (``recipient_not_found``, ``recipient_unavailable``, ``same_card``), the limits
(``limit_exceeded``: per transfer, then the daily limits of the user and of the card, reserved
atomically), and last the ledger (``insufficient_funds``: the deposit cannot go negative and a
credit line cannot pass its limit, checked by the ledger in the same transaction as the posting).

Crash safety: the record is written ``created`` before anything moves; the ledger ids of the
chain derive from the transfer id, so posting again can never post twice; ``recover_transfers``
settles any transfer left ``created`` by a dead process from what the ledger holds.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa

from flashpay.cards.models import cards
from flashpay.cards.numbers import CardNumber, CardNumberError
from flashpay.cards.service import Card, CardStatus, card_from_row, find_card, get_card, is_expired
from flashpay.clock import NS_PER_SECOND
from flashpay.db import autocommit
from flashpay.institutions.chart import (
    LEDGER_CNY,
    AccountCode,
    TransferCode,
    institution_account_id,
)
from flashpay.institutions.service import institution_code, network_code
from flashpay.ledger import CreateTransferResult, Transfer, TransferFlags
from flashpay.ledger.ids import derive_id, new_id
from flashpay.notify import mask_phone
from flashpay.payments import limits
from flashpay.payments.models import p2p_transfers
from flashpay.payments.payer import Payer, payer_by_wallet_card
from flashpay.platform import Platform
from flashpay.wallet.models import wallet_cards, wallet_users
from flashpay.wallet.service import (
    PHONE,
    PinCheck,
    WalletCardStatus,
    WalletError,
    check_pin,
    record_pin_check,
)

logger = logging.getLogger(__name__)

AMOUNT_MAX = 10**12  # fen; anything larger is a malformed request, not a limit decline
MEMO_CHARS_MAX = 64


class TransferStatus(StrEnum):
    CREATED = "created"
    COMPLETED = "completed"
    DECLINED = "declined"


class DeclineReason(StrEnum):
    """Why a transfer was declined; closed, in the order the checks run."""

    PIN_NOT_SET = "pin_not_set"  # a user without a PIN cannot be locked: checked first
    PIN_LOCKED = "pin_locked"
    WRONG_PIN = "wrong_pin"
    CARD_FROZEN = "card_frozen"
    CARD_CLOSED = "card_closed"
    CARD_EXPIRED = "card_expired"
    RECIPIENT_NOT_FOUND = "recipient_not_found"
    RECIPIENT_UNAVAILABLE = "recipient_unavailable"
    SAME_CARD = "same_card"
    LIMIT_EXCEEDED = "limit_exceeded"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    PROCESSING_ERROR = "processing_error"


@dataclass(frozen=True, slots=True)
class P2PRequest:
    from_wallet_card_id: int
    amount: int  # fen
    pin: str
    to_phone: str | None = None
    to_card_number: str | None = None
    currency: str = "CNY"
    memo: str | None = None


@dataclass(frozen=True, slots=True)
class P2PTransfer:
    id: int
    user_id: int
    from_wallet_card_id: int
    from_card_display: str
    recipient_kind: str
    recipient_display: str
    amount: int
    currency: str
    status: TransferStatus
    decline_reason: DeclineReason | None
    voucher: str | None
    memo: str | None
    created_at_ns: int
    completed_at_ns: int | None


def _transfer(row: sa.Row[tuple[object, ...]], from_display: str) -> P2PTransfer:
    m = row._mapping
    reason = m["decline_reason"]
    return P2PTransfer(
        id=int(m["id"]),
        user_id=int(m["user_id"]),
        from_wallet_card_id=int(m["from_wallet_card_id"]),
        from_card_display=from_display,
        recipient_kind=str(m["recipient_kind"]),
        recipient_display=str(m["recipient_display"]),
        amount=int(m["amount"]),
        currency=str(m["currency"]),
        status=TransferStatus(m["status"]),
        decline_reason=None if reason is None else DeclineReason(reason),
        voucher=None if m["voucher"] is None else str(m["voucher"]),
        memo=None if m["memo"] is None else str(m["memo"]),
        created_at_ns=int(m["created_at_ns"]),
        completed_at_ns=None if m["completed_at_ns"] is None else int(m["completed_at_ns"]),
    )


def _validate(request: P2PRequest) -> CardNumber | None:
    if request.currency != "CNY":
        raise WalletError("unsupported_currency", "transfers are in CNY")
    if not 0 < request.amount <= AMOUNT_MAX:
        raise WalletError("invalid_amount", "the amount is a positive number of fen")
    if (request.to_phone is None) == (request.to_card_number is None):
        raise WalletError("invalid_recipient", "give exactly one of to_phone and to_card_number")
    if request.memo is not None and len(request.memo) > MEMO_CHARS_MAX:
        raise WalletError("invalid_memo", f"a memo is at most {MEMO_CHARS_MAX} characters")
    if request.to_phone is not None and not PHONE.match(request.to_phone):
        raise WalletError("invalid_phone", "a mobile number is 11 digits starting with 1")
    if request.to_card_number is not None:
        try:
            return CardNumber.parse(request.to_card_number)
        except CardNumberError as exc:
            raise WalletError("invalid_card_number", str(exc)) from exc
    return None


def _chain(
    platform: Platform, transfer_id: int, amount: int, sender: Card, receiver: Card
) -> list[Transfer]:
    ids = [first_posting_id(transfer_id)] + [
        derive_id("flashpay.p2p", f"{transfer_id}:{leg}") for leg in (1, 2)
    ]
    code = TransferCode.P2P
    if sender.issuer_id == receiver.issuer_id:
        return [
            Transfer(ids[0], sender.ledger_account_id, receiver.ledger_account_id, amount,
                     LEDGER_CNY, code, user_data_64=transfer_id)
        ]  # fmt: skip
    sending = institution_code(platform=platform, institution_id=sender.issuer_id)
    receiving = institution_code(platform=platform, institution_id=receiver.issuer_id)
    network = network_code(platform=platform)
    legs = [
        (sender.ledger_account_id, institution_account_id(sending, AccountCode.NETWORK_PAYABLE)),
        (
            institution_account_id(network, AccountCode.ISSUER_RECEIVABLE, sending),
            institution_account_id(network, AccountCode.ISSUER_PAYABLE, receiving),
        ),
        (
            institution_account_id(receiving, AccountCode.NETWORK_RECEIVABLE),
            receiver.ledger_account_id,
        ),
    ]
    return [
        Transfer(ids[n], debit, credit, amount, LEDGER_CNY, code,
                 flags=TransferFlags.LINKED if n < 2 else TransferFlags.NONE,
                 user_data_64=transfer_id)
        for n, (debit, credit) in enumerate(legs)
    ]  # fmt: skip


def first_posting_id(transfer_id: int) -> int:
    return derive_id("flashpay.p2p", f"{transfer_id}:0")


def ledger_chain_id(*, platform: Platform, transfer_id: int) -> int | None:
    """The ledger chain of a posted transfer (the audit log's key: the timestamp the ledger gave
    its first posting), ``None`` if nothing was posted."""
    found = platform.ledger.lookup_transfers([first_posting_id(transfer_id)])
    return found[0].timestamp if found else None


def _commitment(salt: bytes, transfer_id: int, amount: int, voucher: str) -> bytes:
    """A salted commitment to the business record, kept with the ledger chain for the audit log
    (the record itself — who paid whom — stays in our database)."""
    record = f"flashpay.p2p.v1|{transfer_id}|{amount}|CNY|{voucher}".encode()
    return hashlib.sha256(salt + record).digest()


def _voucher(day: str, transfer_id: int) -> str:
    return day.replace("-", "") + f"{transfer_id:019d}"


def _finish(
    connection: sa.Connection,
    now_ns: int,
    transfer_id: int,
    status: TransferStatus,
    reason: DeclineReason | None = None,
    voucher: str | None = None,
) -> bool:
    """Settle a ``created`` record; ``False`` if another process settled it first (then its
    limit reservation is that process's to give back, not ours)."""
    settled = connection.execute(
        p2p_transfers.update()
        .where(p2p_transfers.c.id == transfer_id, p2p_transfers.c.status == "created")
        .values(
            status=status.value,
            decline_reason=reason and reason.value,
            voucher=voucher,
            completed_at_ns=now_ns,
        )
    ).rowcount
    return settled == 1


def _recipient(platform: Platform, request: P2PRequest, number: CardNumber | None) -> Card | None:
    if request.to_phone is None:
        assert number is not None
        return find_card(platform=platform, card=number)
    with autocommit(platform.engine) as connection:
        row = connection.execute(
            sa.select(cards)
            .join(wallet_cards, wallet_cards.c.card_id == cards.c.id)
            .join(wallet_users, wallet_users.c.id == wallet_cards.c.user_id)
            .where(
                wallet_users.c.phone == request.to_phone,
                wallet_cards.c.is_default.is_(True),
                wallet_cards.c.status != WalletCardStatus.UNBOUND.value,
            )
        ).first()
    return None if row is None else card_from_row(row)


def _early_decline(
    platform: Platform, payer: Payer, verdict: PinCheck, receiver: Card | None
) -> DeclineReason | None:
    """The reasons that need no write to decide, in ``DeclineReason`` order."""
    if verdict is not PinCheck.OK:
        return DeclineReason(verdict.value)
    sender = payer.card
    if payer.wallet_status is WalletCardStatus.FROZEN or sender.status is CardStatus.FROZEN:
        return DeclineReason.CARD_FROZEN
    if sender.status is CardStatus.CLOSED:
        return DeclineReason.CARD_CLOSED
    if is_expired(sender.expiry, platform.clock.now_ns()):
        return DeclineReason.CARD_EXPIRED
    if receiver is None:
        return DeclineReason.RECIPIENT_NOT_FOUND
    if receiver.status is not CardStatus.ACTIVE:
        return DeclineReason.RECIPIENT_UNAVAILABLE
    if receiver.id == sender.id:
        return DeclineReason.SAME_CARD
    return None


def create_transfer(*, platform: Platform, user_id: int, request: P2PRequest) -> P2PTransfer:
    """Run one P2P transfer to its end; a refused money movement is a declined transfer, a
    malformed request a ``WalletError`` (nothing recorded).

    Round trips: one read of the payer (card, issuer record, PIN state), one of the recipient,
    one transaction that records the transfer with the PIN outcome and reserves the daily limits,
    the ledger's posting, and one transaction that completes (or declines) the record."""
    number = _validate(request)
    payer = payer_by_wallet_card(
        platform=platform, user_id=user_id, wallet_card_id=request.from_wallet_card_id
    )
    if payer is None:
        raise WalletError("not_found", "no such card in this wallet", status=404)
    verdict = check_pin(platform=platform, state=payer.pin, pin=request.pin)
    receiver = _recipient(platform, request, number) if verdict is PinCheck.OK else None
    reason = _early_decline(platform, payer, verdict, receiver)
    if reason is None and request.amount > limits.PER_TRANSFER_MAX:
        reason = DeclineReason.LIMIT_EXCEEDED
    now = platform.clock.now_ns()
    day = limits.beijing_day(now)
    transfer_id = new_id()
    salt = secrets.token_bytes(16)
    scopes = {
        f"user:{user_id}": limits.DAILY_PER_USER_MAX,
        f"card:{payer.card.id}": limits.DAILY_PER_CARD_MAX,
    }
    row = {
        "id": transfer_id,
        "user_id": user_id,
        "from_wallet_card_id": payer.wallet_card_id,
        "from_card_id": payer.card.id,
        "to_card_id": receiver.id if receiver is not None else None,
        "recipient_kind": "phone" if request.to_phone is not None else "card",
        "recipient_display": (
            mask_phone(request.to_phone) if request.to_phone is not None
            else number.masked if number is not None else ""
        ),
        "amount": request.amount,
        "currency": request.currency,
        "memo": request.memo,
        "commitment_salt": salt,
        "day": day,
        "created_at_ns": now,
        "voucher": None,
    }  # fmt: skip
    with platform.engine.begin() as connection:
        record_pin_check(platform=platform, connection=connection, state=payer.pin,
                         verdict=verdict)  # fmt: skip
        if reason is None and not limits.reserve_in(
            connection, day=day, amount=request.amount, limits=list(scopes.items())
        ):
            reason = DeclineReason.LIMIT_EXCEEDED
        declined = reason is not None
        connection.execute(
            p2p_transfers.insert().values(
                **row,
                status=(TransferStatus.DECLINED if declined else TransferStatus.CREATED).value,
                decline_reason=reason and reason.value,
                completed_at_ns=now if declined else None,
            )
        )
    status, voucher, finished = TransferStatus.DECLINED, None, now
    if reason is None:
        assert receiver is not None
        status, reason, voucher, finished = _post(
            platform, transfer_id, request.amount, payer.card, receiver, day, salt, scopes
        )
    return P2PTransfer(
        id=transfer_id,
        user_id=user_id,
        from_wallet_card_id=payer.wallet_card_id,
        from_card_display=payer.card.masked,
        recipient_kind=str(row["recipient_kind"]),
        recipient_display=str(row["recipient_display"]),
        amount=request.amount,
        currency=request.currency,
        status=status,
        decline_reason=reason,
        voucher=voucher,
        memo=request.memo,
        created_at_ns=now,
        completed_at_ns=finished,
    )


def _post(
    platform: Platform,
    transfer_id: int,
    amount: int,
    sender: Card,
    receiver: Card,
    day: str,
    salt: bytes,
    scopes: Mapping[str, int],
) -> tuple[TransferStatus, DeclineReason | None, str | None, int]:
    """Post the chain and complete the record, or decline it and give the limits back."""
    chain = _chain(platform, transfer_id, amount, sender, receiver)
    voucher = _voucher(day, transfer_id)
    results = platform.ledger.create_transfers(
        chain, commitments={chain[0].id: _commitment(salt, transfer_id, amount, voucher)}
    )
    now = platform.clock.now_ns()
    if all(r in (CreateTransferResult.OK, CreateTransferResult.EXISTS) for r in results):
        with autocommit(platform.engine) as connection:  # one statement: atomic on its own
            _finish(connection, now, transfer_id, TransferStatus.COMPLETED, voucher=voucher)
        return TransferStatus.COMPLETED, None, voucher, now
    first = next(r for r in results if r is not CreateTransferResult.LINKED_EVENT_FAILED)
    if first in (CreateTransferResult.EXCEEDS_CREDITS, CreateTransferResult.EXCEEDS_DEBITS):
        reason = DeclineReason.INSUFFICIENT_FUNDS
    elif first in (
        CreateTransferResult.DEBIT_ACCOUNT_CLOSED,
        CreateTransferResult.CREDIT_ACCOUNT_CLOSED,
    ):
        reason = DeclineReason.RECIPIENT_UNAVAILABLE
    else:
        logger.error("P2P transfer %s: the ledger refused the chain: %s", transfer_id, results)
        reason = DeclineReason.PROCESSING_ERROR
    with platform.engine.begin() as connection:
        if _finish(connection, now, transfer_id, TransferStatus.DECLINED, reason):
            limits.release_in(connection, day=day, amount=amount, scopes=list(scopes))
    return TransferStatus.DECLINED, reason, None, now


def get_transfer(*, platform: Platform, user_id: int, transfer_id: int) -> P2PTransfer | None:
    """The user's transfer, or ``None`` — also when it is someone else's."""
    with platform.engine.connect() as connection:
        row = connection.execute(
            sa.select(p2p_transfers).where(
                p2p_transfers.c.id == transfer_id, p2p_transfers.c.user_id == user_id
            )
        ).first()
    if row is None:
        return None
    card = get_card(platform=platform, card_id=int(row.from_card_id))
    return _transfer(row, card.masked if card is not None else "")


def list_transfers(
    *, platform: Platform, user_id: int, before_id: int | None = None, limit: int = 20
) -> list[P2PTransfer]:
    """The user's transfers, newest first (ids grow with time), a page at a time."""
    query = sa.select(p2p_transfers).where(p2p_transfers.c.user_id == user_id)
    if before_id is not None:
        query = query.where(p2p_transfers.c.id < before_id)
    with platform.engine.connect() as connection:
        rows = connection.execute(query.order_by(p2p_transfers.c.id.desc()).limit(limit)).all()
    displays: dict[int, str] = {}
    out = []
    for row in rows:
        card_id = int(row.from_card_id)
        if card_id not in displays:
            card = get_card(platform=platform, card_id=card_id)
            displays[card_id] = card.masked if card is not None else ""
        out.append(_transfer(row, displays[card_id]))
    return out


def recover_transfers(*, platform: Platform, older_than_seconds: int = 60) -> int:
    """Settle transfers a dead process left ``created``: completed if the ledger holds their
    chain, else declined (``processing_error``). Returns how many it settled. Safe to run at any
    time, from any process: the ledger ids derive from the transfer id, and a transfer is settled
    only from ``created``."""
    cutoff = platform.clock.now_ns() - older_than_seconds * NS_PER_SECOND
    with platform.engine.connect() as connection:
        rows = connection.execute(
            sa.select(p2p_transfers).where(
                p2p_transfers.c.status == "created", p2p_transfers.c.created_at_ns < cutoff
            )
        ).all()
    for row in rows:
        transfer_id = int(row.id)
        posted = platform.ledger.lookup_transfers([first_posting_id(transfer_id)])
        now = platform.clock.now_ns()
        with platform.engine.begin() as connection:
            if posted:
                _finish(connection, now, transfer_id, TransferStatus.COMPLETED,
                        voucher=_voucher(row.day, transfer_id))  # fmt: skip
                continue
            if _finish(connection, now, transfer_id, TransferStatus.DECLINED,
                       DeclineReason.PROCESSING_ERROR):  # fmt: skip
                # A ``created`` record was written with its limit reservation: give it back
                # (once: only the process whose UPDATE settled the record does).
                scopes = [f"user:{row.user_id}", f"card:{row.from_card_id}"]
                limits.release_in(connection, day=row.day, amount=int(row.amount), scopes=scopes)
    return len(rows)
