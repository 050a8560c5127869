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
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa

from flashpay.cards.numbers import CardNumber, CardNumberError
from flashpay.cards.service import Card, CardStatus, find_card, get_card, is_expired
from flashpay.clock import NS_PER_SECOND
from flashpay.institutions.chart import (
    LEDGER_CNY,
    AccountCode,
    TransferCode,
    institution_account_id,
)
from flashpay.institutions.service import get_institution, network_institution
from flashpay.ledger import CreateTransferResult, Transfer, TransferFlags
from flashpay.ledger.ids import derive_id, new_id
from flashpay.notify import mask_phone
from flashpay.payments import limits
from flashpay.payments.models import p2p_transfers
from flashpay.platform import Platform
from flashpay.wallet.service import (
    PHONE,
    PinCheck,
    WalletCardStatus,
    WalletError,
    default_card_of_phone,
    get_wallet_card,
    verify_pin,
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

    PIN_LOCKED = "pin_locked"
    PIN_NOT_SET = "pin_not_set"
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
    ids = [derive_id("flashpay.p2p", f"{transfer_id}:{leg}") for leg in range(3)]
    code = TransferCode.P2P
    if sender.issuer_id == receiver.issuer_id:
        return [
            Transfer(ids[0], sender.ledger_account_id, receiver.ledger_account_id, amount,
                     LEDGER_CNY, code, user_data_64=transfer_id)
        ]  # fmt: skip
    sending = get_institution(platform=platform, institution_id=sender.issuer_id)
    receiving = get_institution(platform=platform, institution_id=receiver.issuer_id)
    network = network_institution(platform=platform)
    assert sending is not None
    assert receiving is not None
    linked = TransferFlags.LINKED
    return [
        Transfer(
            ids[0],
            sender.ledger_account_id,
            institution_account_id(sending.code, AccountCode.NETWORK_PAYABLE),
            amount,
            LEDGER_CNY,
            code,
            flags=linked,
            user_data_64=transfer_id,
        ),
        Transfer(
            ids[1],
            institution_account_id(network.code, AccountCode.ISSUER_RECEIVABLE, sending.code),
            institution_account_id(network.code, AccountCode.ISSUER_PAYABLE, receiving.code),
            amount,
            LEDGER_CNY,
            code,
            flags=linked,
            user_data_64=transfer_id,
        ),
        Transfer(
            ids[2],
            institution_account_id(receiving.code, AccountCode.NETWORK_RECEIVABLE),
            receiver.ledger_account_id,
            amount,
            LEDGER_CNY,
            code,
            user_data_64=transfer_id,
        ),
    ]


def _commitment(salt: bytes, transfer_id: int, amount: int, voucher: str) -> bytes:
    """A salted commitment to the business record, kept with the ledger chain for the audit log
    (the record itself — who paid whom — stays in our database)."""
    record = f"flashpay.p2p.v1|{transfer_id}|{amount}|CNY|{voucher}".encode()
    return hashlib.sha256(salt + record).digest()


def _voucher(day: str, transfer_id: int) -> str:
    return day.replace("-", "") + f"{transfer_id:019d}"


def _finish(
    platform: Platform,
    transfer_id: int,
    status: TransferStatus,
    reason: DeclineReason | None = None,
    voucher: str | None = None,
) -> None:
    with platform.engine.begin() as connection:
        connection.execute(
            p2p_transfers.update()
            .where(p2p_transfers.c.id == transfer_id, p2p_transfers.c.status == "created")
            .values(
                status=status.value,
                decline_reason=reason and reason.value,
                voucher=voucher,
                completed_at_ns=platform.clock.now_ns(),
            )
        )


def create_transfer(*, platform: Platform, user_id: int, request: P2PRequest) -> P2PTransfer:
    """Run one P2P transfer to its end; a refused money movement is a declined transfer, a
    malformed request a ``WalletError`` (nothing recorded)."""
    to_card_number = _validate(request)
    source = get_wallet_card(
        platform=platform, user_id=user_id, wallet_card_id=request.from_wallet_card_id
    )
    if source is None:
        raise WalletError("not_found", "no such card in this wallet", status=404)
    now = platform.clock.now_ns()
    day = limits.beijing_day(now)
    transfer_id = new_id()
    salt = secrets.token_bytes(16)
    display = (
        mask_phone(request.to_phone)
        if request.to_phone is not None
        else (to_card_number.masked if to_card_number is not None else "")
    )
    with platform.engine.begin() as connection:
        connection.execute(
            p2p_transfers.insert().values(
                id=transfer_id,
                user_id=user_id,
                from_wallet_card_id=source.id,
                from_card_id=source.card.id,
                to_card_id=None,
                recipient_kind="phone" if request.to_phone is not None else "card",
                recipient_display=display,
                amount=request.amount,
                currency=request.currency,
                status=TransferStatus.CREATED.value,
                decline_reason=None,
                voucher=None,
                memo=request.memo,
                commitment_salt=salt,
                day=day,
                created_at_ns=now,
                completed_at_ns=None,
            )
        )
    reason = _decide(platform, transfer_id, user_id, request, source.card, source.status,
                     to_card_number, day)  # fmt: skip
    if reason is not None:
        _finish(platform, transfer_id, TransferStatus.DECLINED, reason)
    found = get_transfer(platform=platform, user_id=user_id, transfer_id=transfer_id)
    assert found is not None
    return found


def _decide(
    platform: Platform,
    transfer_id: int,
    user_id: int,
    request: P2PRequest,
    sender: Card,
    wallet_status: WalletCardStatus,
    to_card_number: CardNumber | None,
    day: str,
) -> DeclineReason | None:
    """Run the checks and the posting; ``None`` when the transfer completed."""
    pin = verify_pin(platform=platform, user_id=user_id, pin=request.pin)
    if pin is not PinCheck.OK:
        return DeclineReason(pin.value)
    sender = get_card(platform=platform, card_id=sender.id) or sender  # the issuer's latest
    if wallet_status is WalletCardStatus.FROZEN or sender.status is CardStatus.FROZEN:
        return DeclineReason.CARD_FROZEN
    if sender.status is CardStatus.CLOSED:
        return DeclineReason.CARD_CLOSED
    if is_expired(sender.expiry, platform.clock.now_ns()):
        return DeclineReason.CARD_EXPIRED
    receiver: Card | None
    if request.to_phone is not None:
        target = default_card_of_phone(platform=platform, phone=request.to_phone)
        receiver = None if target is None else target.card
    else:
        assert to_card_number is not None
        receiver = find_card(platform=platform, card=to_card_number)
    if receiver is None:
        return DeclineReason.RECIPIENT_NOT_FOUND
    with platform.engine.begin() as connection:
        connection.execute(
            p2p_transfers.update()
            .where(p2p_transfers.c.id == transfer_id)
            .values(to_card_id=receiver.id)
        )
    if receiver.status is not CardStatus.ACTIVE:
        return DeclineReason.RECIPIENT_UNAVAILABLE
    if receiver.id == sender.id:
        return DeclineReason.SAME_CARD
    if request.amount > limits.PER_TRANSFER_MAX:
        return DeclineReason.LIMIT_EXCEEDED
    scopes = {
        f"user:{user_id}": limits.DAILY_PER_USER_MAX,
        f"card:{sender.id}": limits.DAILY_PER_CARD_MAX,
    }
    if not limits.reserve(
        platform=platform, day=day, amount=request.amount, limits=list(scopes.items())
    ):
        return DeclineReason.LIMIT_EXCEEDED
    return _post(platform, transfer_id, request.amount, sender, receiver, day, list(scopes))


def _post(
    platform: Platform,
    transfer_id: int,
    amount: int,
    sender: Card,
    receiver: Card,
    day: str,
    scopes: list[str],
) -> DeclineReason | None:
    chain = _chain(platform, transfer_id, amount, sender, receiver)
    voucher = _voucher(day, transfer_id)
    with platform.engine.connect() as connection:
        salt = connection.execute(
            sa.select(p2p_transfers.c.commitment_salt).where(p2p_transfers.c.id == transfer_id)
        ).scalar_one()
    results = platform.ledger.create_transfers(
        chain, commitments={chain[0].id: _commitment(bytes(salt), transfer_id, amount, voucher)}
    )
    if all(r in (CreateTransferResult.OK, CreateTransferResult.EXISTS) for r in results):
        _finish(platform, transfer_id, TransferStatus.COMPLETED, voucher=voucher)
        return None
    limits.release(platform=platform, day=day, amount=amount, scopes=scopes)
    first = next(r for r in results if r is not CreateTransferResult.LINKED_EVENT_FAILED)
    if first in (CreateTransferResult.EXCEEDS_CREDITS, CreateTransferResult.EXCEEDS_DEBITS):
        return DeclineReason.INSUFFICIENT_FUNDS
    if first in (
        CreateTransferResult.DEBIT_ACCOUNT_CLOSED,
        CreateTransferResult.CREDIT_ACCOUNT_CLOSED,
    ):
        return DeclineReason.RECIPIENT_UNAVAILABLE
    logger.error("P2P transfer %s: the ledger refused the chain: %s", transfer_id, results)
    return DeclineReason.PROCESSING_ERROR


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
        first_leg = derive_id("flashpay.p2p", f"{row.id}:0")
        if platform.ledger.lookup_transfers([first_leg]):
            _finish(
                platform,
                int(row.id),
                TransferStatus.COMPLETED,
                voucher=_voucher(row.day, int(row.id)),
            )
            continue
        _finish(platform, int(row.id), TransferStatus.DECLINED, DeclineReason.PROCESSING_ERROR)
        # A reservation exists only if the transfer got past the limit checks; giving back one
        # that was never taken would credit the user. The counters cannot tell, so recovery
        # gives back nothing and errs on the safe side (the user can spend less that day).
    return len(rows)
