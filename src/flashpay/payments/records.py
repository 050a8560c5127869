"""The ``payments`` tables as the pipeline reads and writes them: history events and their
numbers, a payment read back with what its reader shows (merchant, terminal, bill, masked
card), the paying card and commitment salt of recorded payments, and the Idempotency-Keys
bound already.

A reader's view is read in one connection, one statement per owner: the payments rows, then
the merchants' labels (``flashpay.merchants.order_claims.payment_labels``) and the paying cards
(``flashpay.cards.service.cards_by_id``) — no query joins another domain's tables.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from flashpay.cards.service import (
    Card,
    cards_by_id,
)
from flashpay.db import autocommit
from flashpay.errors import invariant
from flashpay.idempotency import (
    IdempotencyTag,
    find_effects,
)
from flashpay.merchants.order_claims import PaymentLabels, payment_labels
from flashpay.payments.attempts import (
    DeclineReason,
    Payment,
    PaymentKind,
    PaymentStatus,
)
from flashpay.payments.models import (
    payment_events,
    payments,
)
from flashpay.payments.plans import shares_of
from flashpay.platform import Platform


def event_row(
    payment_id: int,
    seq: int,
    status: PaymentStatus,
    amount: int,
    at_ns: int,
    detail: str | None = None,
) -> dict[str, object]:
    return {
        "payment_id": payment_id,
        "seq": seq,
        "status": status.value,
        "amount": amount,
        "at_ns": at_ns,
        "detail": detail,
    }


def add_event(
    connection: sa.Connection,
    payment_id: int,
    seq: int,
    status: PaymentStatus,
    amount: int,
    at_ns: int,
    detail: str | None = None,
) -> None:
    connection.execute(
        payment_events.insert(), event_row(payment_id, seq, status, amount, at_ns, detail)
    )


def next_seq(connection: sa.Connection, payment_id: int) -> int:
    last = connection.execute(
        sa.select(sa.func.max(payment_events.c.seq)).where(
            payment_events.c.payment_id == payment_id
        )
    ).scalar()
    return int(last or 0) + 1


def payments_query() -> sa.Select[tuple[object, ...]]:
    """The payments rows; ``read_payments`` adds what a reader shows of them."""
    return sa.select(payments)


def read_payments(connection: sa.Connection, rows: Sequence[sa.Row[Any]]) -> list[Payment]:
    """``rows`` of ``payments_query`` as payments, with the merchant's name, the terminal, the
    bill number and the masked card, read from their owners (two statements, none for no rows)."""
    if not rows:
        return []
    labels = payment_labels(
        connection,
        merchant_ids={int(r.merchant_id) for r in rows if r.merchant_id is not None},
        terminal_ids={int(r.terminal_id) for r in rows if r.terminal_id is not None},
        order_ids={int(r.order_id) for r in rows if r.order_id is not None},
    )
    paying = cards_by_id(
        connection=connection, card_ids={int(r.card_id) for r in rows if r.card_id is not None}
    )
    return [_payment(row, labels, paying) for row in rows]


def _payment(row: sa.Row[Any], labels: PaymentLabels, paying: Mapping[int, Card]) -> Payment:
    m = row._mapping
    card = None if m["card_id"] is None else paying.get(int(m["card_id"]))
    reason = m["decline_reason"]
    return Payment(
        id=int(m["id"]), kind=PaymentKind(m["kind"]),
        user_id=m["user_id"], wallet_card_id=m["wallet_card_id"],
        card_display=None if card is None else card.masked,
        merchant_id=m["merchant_id"],
        merchant_name=None if m["merchant_id"] is None
        else labels.merchant_names.get(int(m["merchant_id"])),
        terminal=None if m["terminal_id"] is None
        else labels.terminal_codes.get(int(m["terminal_id"])),
        order_id=m["order_id"],
        bill_number=None if m["order_id"] is None else labels.bill_numbers.get(int(m["order_id"])),
        amount=int(m["amount"]), captured=int(m["captured"]), refunded=int(m["refunded"]),
        currency=str(m["currency"]), status=PaymentStatus(m["status"]),
        decline_reason=None if reason is None else DeclineReason(reason),
        voucher=m["voucher"], pin_verified=bool(m["pin_verified"]),
        two_phase=bool(m["two_phase"]), hold_expires_at_ns=m["hold_expires_at_ns"],
        created_at_ns=int(m["created_at_ns"]), updated_at_ns=int(m["updated_at_ns"]),
        discount=int(m["discount"]), promotions=shares_of(m["promotions"]),
    )  # fmt: skip


def payments_by_id(platform: Platform, ids: Collection[int]) -> dict[int, Payment]:
    with autocommit(platform.engine) as connection:
        rows = connection.execute(payments_query().where(payments.c.id.in_(sorted(ids)))).all()
        return {p.id: p for p in read_payments(connection, rows)}


def load_payment(platform: Platform, payment_id: int) -> Payment | None:
    return payments_by_id(platform, [payment_id]).get(payment_id)


def next_numbers(
    connection: sa.Connection, table: sa.Table, payment_ids: Sequence[int], *, after: int = 0
) -> dict[int, int]:
    """Each payment's next ``seq`` in ``table`` (its history events, its refunds): one more than
    the highest, or ``after + 1`` for the first."""
    rows = connection.execute(
        sa.select(table.c.payment_id, sa.func.max(table.c.seq))
        .where(table.c.payment_id.in_(sorted(payment_ids)))
        .group_by(table.c.payment_id)
    )
    last = {int(payment_id): int(seq) for payment_id, seq in rows}
    return {payment_id: last.get(payment_id, after) + 1 for payment_id in payment_ids}


def next_seqs(connection: sa.Connection, payment_ids: Sequence[int]) -> dict[int, int]:
    return next_numbers(connection, payment_events, payment_ids)


def cards_and_salts(
    platform: Platform, payment_ids: Sequence[int]
) -> dict[int, tuple[Card, bytes]]:
    """The paying card and the commitment salt of payments, by payment id (two statements:
    the payments, then their cards from the cards domain)."""
    if not payment_ids:
        return {}
    with autocommit(platform.engine) as connection:
        rows = connection.execute(
            sa.select(payments.c.id, payments.c.card_id, payments.c.commitment_salt).where(
                payments.c.id.in_(sorted(set(payment_ids))), payments.c.card_id.is_not(None)
            )
        ).all()
        paying = cards_by_id(connection=connection, card_ids={int(r.card_id) for r in rows})
    return {
        int(r.id): (paying[int(r.card_id)], bytes(r.commitment_salt))
        for r in rows
        if int(r.card_id) in paying
    }


def bound_payments(
    platform: Platform, tags: Sequence[IdempotencyTag | None], kind: str
) -> dict[IdempotencyTag, int]:
    """The payment each of ``tags`` is bound to already, by tag (one read; none without tags)."""
    if not any(tags):
        return {}
    with autocommit(platform.engine) as connection:
        found = find_effects(connection, tags)
    for tag, effect in found.items():
        invariant(effect.kind == kind, f"{tag} is bound to {effect}, not a {kind}")
    return {tag: effect.effect_id for tag, effect in found.items()}
