"""P2P transfers: their vocabulary and their records.

A transfer is a record with a state machine, ``created → completed | declined``. Order of
checks, and so of decline reasons: the PIN (``pin_not_set``, ``pin_locked``, ``wrong_pin``),
the sending card (``card_frozen``, ``card_closed``, ``card_expired``), the recipient
(``recipient_not_found``, ``recipient_unavailable``, ``same_card``), the limits
(``limit_exceeded``: per transfer, then the daily limits of the user and of the card, reserved
atomically), and last the ledger (``insufficient_funds``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa

from flashpay.cards.numbers import CardNumber
from flashpay.cards.service import (
    Card,
)
from flashpay.idempotency import (
    IdempotencyTag,
)
from flashpay.money import Money
from flashpay.notify import mask_phone
from flashpay.payments import limits
from flashpay.payments.models import (
    p2p_transfers,
)
from flashpay.payments.payer import Payer
from flashpay.wallet.pin import PinCheck, PinState

MEMO_CHARS_MAX = 64
REQUESTS_PER_BATCH_MAX = 4096  # 3 ledger events each at most: up to two ledger calls per round
EFFECT_KIND = "transfer"  # what an Idempotency-Key of a transfer request is bound to


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
    """A user sends ``amount`` from a bound card to a phone or a card number. The ``Money`` says
    its currency; anything but CNY is refused (``unsupported_currency``)."""

    from_wallet_card_id: int
    amount: Money
    pin: str
    to_phone: str | None = None
    to_card_number: str | None = None
    memo: str | None = None
    idempotency: IdempotencyTag | None = None  # the caller's key, bound to the transfer


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


def transfer_from_row(row: sa.Row[tuple[object, ...]], from_display: str) -> P2PTransfer:
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


@dataclass(frozen=True, slots=True)
class TransferAttempt:
    """A well-formed request from a bound card of its user, after the reads and the checks that
    need no write: ``reason`` is ``None`` while it may still go through (limits, ledger)."""

    index: int  # in the batch
    transfer_id: int
    user_id: int
    request: P2PRequest
    number: CardNumber | None  # the recipient's card number, when sent to one
    payer: Payer
    pin: PinState  # what record_pin_check must see: earlier requests of the batch applied
    verdict: PinCheck
    receiver: Card | None
    reason: DeclineReason | None
    salt: bytes

    @property
    def amount(self) -> int:
        """The request's amount in fen: the one place a transfer's ``Money`` becomes the minor
        units its limits, ledger legs and row are built from (``_validate`` took it as CNY)."""
        return self.request.amount.amount_minor

    @property
    def scopes(self) -> tuple[str, str]:
        return limit_scopes(self.user_id, self.payer.card.id)

    def reservation(self) -> limits.Reservation:
        user, card = self.scopes
        return limits.Reservation(
            self.amount,
            ((user, limits.DAILY_PER_USER_MAX), (card, limits.DAILY_PER_CARD_MAX)),
        )


@dataclass(frozen=True, slots=True)
class TransferOutcome:
    status: TransferStatus
    reason: DeclineReason | None
    voucher: str | None
    finished_ns: int


def limit_scopes(user_id: int, card_id: int) -> tuple[str, str]:
    """The daily counters a transfer reserves (and recovery gives back)."""
    return f"user:{user_id}", f"card:{card_id}"


def recipient_display(request: P2PRequest, number: CardNumber | None) -> str:
    if request.to_phone is not None:
        return mask_phone(request.to_phone)
    return number.masked if number is not None else ""


def transfer_row(
    a: TransferAttempt, now_ns: int, day: str, reason: DeclineReason | None
) -> dict[str, object]:
    """The transfer's record: ``created`` when it goes to the ledger, else ``declined``."""
    declined = reason is not None
    return {
        "id": a.transfer_id,
        "user_id": a.user_id,
        "from_wallet_card_id": a.payer.wallet_card_id,
        "from_card_id": a.payer.card.id,
        "to_card_id": a.receiver.id if a.receiver is not None else None,
        "recipient_kind": "phone" if a.request.to_phone is not None else "card",
        "recipient_display": recipient_display(a.request, a.number),
        "amount": a.amount,
        "currency": a.request.amount.currency.code,
        "memo": a.request.memo,
        "commitment_salt": a.salt,
        "day": day,
        "created_at_ns": now_ns,
        "voucher": None,
        "status": (TransferStatus.DECLINED if declined else TransferStatus.CREATED).value,
        "decline_reason": reason and reason.value,
        "completed_at_ns": now_ns if declined else None,
    }


def transfer_answer(a: TransferAttempt, now_ns: int, outcome: TransferOutcome) -> P2PTransfer:
    return P2PTransfer(
        id=a.transfer_id,
        user_id=a.user_id,
        from_wallet_card_id=a.payer.wallet_card_id,
        from_card_display=a.payer.card.masked,
        recipient_kind="phone" if a.request.to_phone is not None else "card",
        recipient_display=recipient_display(a.request, a.number),
        amount=a.amount,
        currency=a.request.amount.currency.code,
        status=outcome.status,
        decline_reason=outcome.reason,
        voucher=outcome.voucher,
        memo=a.request.memo,
        created_at_ns=now_ns,
        completed_at_ns=outcome.finished_ns,
    )


_COMPLETE = (
    p2p_transfers.update()
    .where(p2p_transfers.c.id == sa.bindparam("t"), p2p_transfers.c.status == "created")
    .values(
        status=TransferStatus.COMPLETED.value,
        voucher=sa.bindparam("v"),
        completed_at_ns=sa.bindparam("at"),
    )
)


def settle_records(
    connection: sa.Connection,
    now_ns: int,
    *,
    completed: Sequence[tuple[int, str]],
    declined: Sequence[tuple[int, DeclineReason]],
) -> None:
    """Settle ``created`` records in the caller's transaction: complete (transfer id, voucher)
    and decline (transfer id, reason), giving back the limits of exactly the declined records
    this statement moved out of ``created`` — a record another process settled first (a racing
    ``recover_transfers``) is that process's to give back. Three statements at most."""
    if completed:
        connection.execute(
            _COMPLETE, [{"t": i, "v": v, "at": now_ns} for i, v in sorted(completed)]
        )
    if not declined:
        return
    by_reason: dict[DeclineReason, list[int]] = defaultdict(list)
    for transfer_id, reason in declined:
        by_reason[reason].append(transfer_id)
    t = p2p_transfers.c
    moved = connection.execute(
        p2p_transfers.update()
        .where(t.id.in_(sorted(i for i, _ in declined)), t.status == "created")
        .values(
            status=TransferStatus.DECLINED.value,
            decline_reason=sa.case(
                *((t.id.in_(ids), reason.value) for reason, ids in by_reason.items())
            ),
            completed_at_ns=now_ns,
        )
        .returning(t.user_id, t.from_card_id, t.amount, t.day)
    ).all()
    given_back: dict[str, list[tuple[int, tuple[str, str]]]] = defaultdict(list)
    for row in moved:
        scopes = limit_scopes(int(row.user_id), int(row.from_card_id))
        given_back[str(row.day)].append((int(row.amount), scopes))
    for day, amounts in sorted(given_back.items()):
        limits.release_many(connection, day=day, given_back=amounts)
