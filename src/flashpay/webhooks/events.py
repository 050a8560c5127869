"""The merchants' events: their types, their stable ids, and how a committed ledger chain is
recognised as one (a pure function of the chain and the payment it names).

A payment's ledger transfers have ids derived from the payment's id and what they do
(``flashpay.payments.legs.ledger_ids``: ``purchase``, ``hold``, ``capture``, ``refund<n>``, and
the ``void`` legs of a settlement), and each carries the payment id in ``user_data_64``. So a
chain says which fact it is by its first transfer's id, with no table to consult but the
payment's refunds (to know which ``n`` a refund chain is):

| first transfer of the chain | event |
|---|---|
| ``purchase`` leg | ``payment.completed`` (a one-phase payment paid) |
| ``hold`` leg | ``payment.authorized`` |
| ``void`` leg, with ``capture`` legs after it | ``payment.completed`` (a hold captured) |
| ``void`` leg alone | ``payment.voided`` |
| ``refund<n>`` leg | ``payment.refunded`` |

``hold.expired`` has no chain (the ledger releases an expired hold without posting anything):
it is derived from the payment's deadline instead (``flashpay.webhooks.derive``).

**The event id** is ``evt_`` and 24 hex digits of SHA-256 over ``type | payment id | n``: the same
fact always gets the same id, whichever process derives it and however often (after a crash, a
replayed window), and the table's unique key keeps one row per id. An amount is the sum of the
chain's two card legs (legs 0 and 1 of §4: interchange + the rest = what the card paid, or got
back), so a partial capture or refund carries its own amount, not the payment's.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from flashpay.institutions.chart import TransferCode
from flashpay.ledger.ids import derive_id
from flashpay.ledger.types import CommittedChain, Transfer
from flashpay.money import Money
from flashpay.payments.attempts import Payment
from flashpay.payments.feeds import RefundLine
from flashpay.payments.legs import ledger_ids

EVENT_ID_PREFIX = "evt_"
EVENT_ID_HEX_CHARS = 24
LEGS_MAX = 6


class EventType(StrEnum):
    PAYMENT_AUTHORIZED = "payment.authorized"
    PAYMENT_COMPLETED = "payment.completed"
    PAYMENT_VOIDED = "payment.voided"
    PAYMENT_REFUNDED = "payment.refunded"
    HOLD_EXPIRED = "hold.expired"


ALL_EVENT_TYPES: tuple[EventType, ...] = tuple(EventType)


def event_id(event_type: EventType, payment_id: int, n: int = 0) -> str:
    """The stable id of one fact: ``evt_`` + 24 hex digits of SHA-256(type | payment | n)."""
    digest = hashlib.sha256(f"flashpay.webhooks|{event_type}|{payment_id}|{n}".encode()).hexdigest()
    return EVENT_ID_PREFIX + digest[:EVENT_ID_HEX_CHARS]


@dataclass(frozen=True, slots=True)
class Fact:
    """What a chain (or a lapsed hold) tells a merchant, before it is an event row."""

    type: EventType
    payment_id: int
    n: int  # the refund's record number (payments' ``seq``); 0 for the other types
    amount_minor: int
    created_at_ns: int  # the chain's ledger timestamp, or the hold's deadline
    source: int  # the chain id, or the payment id for a lapsed hold
    refund_number: int = 0  # 1 for the payment's first refund, 2 for the second, …

    @property
    def id(self) -> str:
        return event_id(self.type, self.payment_id, self.n)


def chain_payment_id(chain: CommittedChain) -> int | None:
    """The payment a chain belongs to, ``None`` for a chain that is not a payment's (a P2P
    transfer, an opening deposit, a recovery fence)."""
    lead = _lead(chain)
    return None if lead is None else (lead.user_data_64 or None)


def _lead(chain: CommittedChain) -> Transfer | None:
    """The chain's first purchase (or hold) leg, which names it. A discounted purchase opens
    with its ``PROMOTION`` legs (the card is credited the discount first, decision 0019), so
    the chain's very first transfer is not always a purchase leg."""
    if not chain.transfers:
        return None
    for transfer in chain.transfers:
        if transfer.code in (TransferCode.PURCHASE, TransferCode.PURCHASE_HOLD):
            return transfer
        if transfer.code not in (TransferCode.PROMOTION, TransferCode.PROMOTION_FUNDING):
            return None  # another domain's chain
    return None


def names_its_payment(chain: CommittedChain, payment_id: int) -> bool:
    """Whether the chain's first transfer is a payment's purchase, hold or void leg (ids derived
    from ``payment_id``): a chain of another domain's (a transit debit) that merely carries a
    number in ``user_data_64`` is not. A refund needs its record to be told; see ``classify``."""
    lead = _lead(chain)
    if lead is None:
        return False
    first = lead.id
    return (
        first in ledger_ids(payment_id, "purchase")
        or first in ledger_ids(payment_id, "hold")
        or first in _void_ids(payment_id)
    )


def _void_ids(payment_id: int) -> set[int]:
    return {derive_id("flashpay.payment", f"{payment_id}:void:{n}") for n in range(LEGS_MAX)}


def _card_amount(chain: CommittedChain, ids: Sequence[int]) -> int:
    card_legs = set(ids[:2])
    return sum(t.amount for t in chain.transfers if t.id in card_legs)


def classify(chain: CommittedChain, refunds: Sequence[RefundLine]) -> Fact | None:
    """The fact ``chain`` records, ``None`` when it is none a merchant is told of."""
    payment_id = chain_payment_id(chain)
    lead = _lead(chain)
    if payment_id is None or lead is None:
        return None
    first = lead.id
    at = chain.chain_id

    def fact(kind: EventType, ids: Sequence[int], n: int = 0) -> Fact:
        return Fact(kind, payment_id, n, _card_amount(chain, ids), at, chain.chain_id)

    purchase = ledger_ids(payment_id, "purchase")
    if first in purchase:
        return fact(EventType.PAYMENT_COMPLETED, purchase)
    hold = ledger_ids(payment_id, "hold")
    if first in hold:
        return fact(EventType.PAYMENT_AUTHORIZED, hold)
    if first in _void_ids(payment_id):
        capture = ledger_ids(payment_id, "capture")
        if any(t.id in capture for t in chain.transfers):
            return fact(EventType.PAYMENT_COMPLETED, capture)
        return Fact(EventType.PAYMENT_VOIDED, payment_id, 0, 0, at, chain.chain_id)
    for number, refund in enumerate(sorted(refunds, key=lambda r: r.seq), start=1):
        ids = ledger_ids(payment_id, f"refund{refund.seq}")
        if first in ids:
            found = fact(EventType.PAYMENT_REFUNDED, ids, refund.seq)
            return dataclasses.replace(found, refund_number=number)
    return None


def event_body(fact: Fact, payment: Payment, *, created_at: str) -> dict[str, Any]:
    """The JSON object every delivery of ``fact`` sends (and the feed answers): only what cannot
    change once the fact is committed, so re-deriving it gives the same bytes."""
    data: dict[str, Any] = {
        "payment_id": str(payment.id),
        "kind": payment.kind.value,
        "amount_minor": fact.amount_minor,
        "currency": payment.currency,
        "terminal": payment.terminal,
        "order_id": None if payment.order_id is None else str(payment.order_id),
        "bill_number": payment.bill_number,
    }
    if fact.type is EventType.PAYMENT_AUTHORIZED or fact.type is EventType.HOLD_EXPIRED:
        data["hold_expires_at_ns"] = payment.hold_expires_at_ns
    if fact.type is EventType.PAYMENT_REFUNDED:
        data["refund_number"] = fact.refund_number
    if fact.type is EventType.HOLD_EXPIRED:
        data["amount_minor"] = payment.amount
    if fact.type is not EventType.HOLD_EXPIRED:
        data["chain_id"] = str(fact.source)
    data["amount"] = Money.of(data["amount_minor"], payment.currency).decimal_text()
    return {
        "id": fact.id,
        "type": fact.type.value,
        "created_at": created_at,
        "merchant_id": payment.merchant_id,
        "data": data,
    }
