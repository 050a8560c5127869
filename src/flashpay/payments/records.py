"""The ``payments`` tables as the pipeline reads and writes them: history events and their
numbers, a payment read back with what its reader shows (merchant, terminal, bill, masked
card), the paying card and commitment salt of recorded payments, and the Idempotency-Keys
bound already.

The reader's view joins other domains' tables (merchants, terminals, orders, cards) in one
query; moving those reads behind the owners' functions is item 2 of issue 13 (not done here).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import sqlalchemy as sa

from flashpay.cards.models import cards
from flashpay.cards.service import (
    Card,
    card_from_row,
)
from flashpay.db import autocommit
from flashpay.errors import invariant
from flashpay.idempotency import (
    IdempotencyTag,
    find_effects,
)
from flashpay.merchants.models import merchants, qr_orders, terminals
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
    """Payments with what a reader shows of them: merchant name, terminal, bill, masked card."""
    return (
        sa.select(
            payments,
            merchants.c.display_name,
            terminals.c.code.label("terminal_code"),
            qr_orders.c.bill_number,
            cards.c.pan_first6,
            cards.c.pan_last4,
            cards.c.pan_length,
        )
        .outerjoin(merchants, merchants.c.id == payments.c.merchant_id)
        .outerjoin(terminals, terminals.c.id == payments.c.terminal_id)
        .outerjoin(qr_orders, qr_orders.c.id == payments.c.order_id)
        .outerjoin(cards, cards.c.id == payments.c.card_id)
    )


def payment_from_row(row: sa.Row[tuple[object, ...]]) -> Payment:
    m = row._mapping
    display = (
        f"{m['pan_first6']}{'*' * (int(m['pan_length']) - 10)}{m['pan_last4']}"
        if m["pan_first6"] is not None
        else None
    )
    reason = m["decline_reason"]
    return Payment(
        id=int(m["id"]), kind=PaymentKind(m["kind"]),
        user_id=m["user_id"], wallet_card_id=m["wallet_card_id"], card_display=display,
        merchant_id=m["merchant_id"], merchant_name=m["display_name"],
        terminal=m["terminal_code"], order_id=m["order_id"], bill_number=m["bill_number"],
        amount=int(m["amount"]), captured=int(m["captured"]), refunded=int(m["refunded"]),
        currency=str(m["currency"]), status=PaymentStatus(m["status"]),
        decline_reason=None if reason is None else DeclineReason(reason),
        voucher=m["voucher"], pin_verified=bool(m["pin_verified"]),
        two_phase=bool(m["two_phase"]), hold_expires_at_ns=m["hold_expires_at_ns"],
        created_at_ns=int(m["created_at_ns"]), updated_at_ns=int(m["updated_at_ns"]),
    )  # fmt: skip


def payments_by_id(platform: Platform, ids: Collection[int]) -> dict[int, Payment]:
    with autocommit(platform.engine) as connection:
        rows = connection.execute(payments_query().where(payments.c.id.in_(sorted(ids))))
        return {p.id: p for p in map(payment_from_row, rows)}


def load_payment(platform: Platform, payment_id: int) -> Payment | None:
    with autocommit(platform.engine) as connection:
        row = connection.execute(payments_query().where(payments.c.id == payment_id)).first()
    return None if row is None else payment_from_row(row)


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
    """The paying card and the commitment salt of payments, by payment id, in one query."""
    if not payment_ids:
        return {}
    with autocommit(platform.engine) as connection:
        rows = connection.execute(
            sa.select(cards, payments.c.id.label("payment_id"), payments.c.commitment_salt)
            .join(payments, payments.c.card_id == cards.c.id)
            .where(payments.c.id.in_(sorted(set(payment_ids))))
        )
        return {
            int(row.payment_id): (card_from_row(row), bytes(row.commitment_salt)) for row in rows
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
