"""What the merchants' event feed (``flashpay.webhooks``) reads of payments, in the caller's
connection: payments by id as their readers see them, a payment's refunds, and the holds that
lapsed in a window of deadlines.

The feed derives its events from the ledger's committed chains; a chain names its payment
(``user_data_64``) but not the merchant, the order or which refund it is. These reads answer
that without the feed touching the payments tables (docs/reference/architecture.md rule 3).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import sqlalchemy as sa

from flashpay.payments.attempts import Payment, PaymentStatus
from flashpay.payments.models import payment_refunds, payments
from flashpay.payments.records import payments_query, read_payments

LAPSED_HOLDS_MAX = 1000


@dataclass(frozen=True, slots=True)
class RefundLine:
    """One refund of a payment: its number (1, 2, …), amount in fen and status."""

    payment_id: int
    seq: int
    amount: int
    status: str


def payments_of(connection: sa.Connection, payment_ids: Collection[int]) -> dict[int, Payment]:
    """The payments among ``payment_ids``, by id (three statements; none for no ids)."""
    if not payment_ids:
        return {}
    rows = connection.execute(
        payments_query().where(payments.c.id.in_(sorted(set(payment_ids))))
    ).all()
    return {p.id: p for p in read_payments(connection, rows)}


def refunds_of(
    connection: sa.Connection, payment_ids: Collection[int]
) -> dict[int, tuple[RefundLine, ...]]:
    """Each payment's refunds, in number order (one statement)."""
    if not payment_ids:
        return {}
    r = payment_refunds.c
    found: dict[int, list[RefundLine]] = {}
    for row in connection.execute(
        sa.select(r.payment_id, r.seq, r.amount, r.status)
        .where(r.payment_id.in_(sorted(set(payment_ids))))
        .order_by(r.payment_id, r.seq)
    ):
        found.setdefault(int(row.payment_id), []).append(
            RefundLine(int(row.payment_id), int(row.seq), int(row.amount), str(row.status))
        )
    return {k: tuple(v) for k, v in found.items()}


def lapsed_holds(
    connection: sa.Connection, *, after_ns: int, until_ns: int, limit: int = LAPSED_HOLDS_MAX
) -> list[Payment]:
    """Two-phase payments whose hold's deadline is in ``(after_ns, until_ns]`` and that were
    neither captured nor voided before it (still ``authorized``, or ``expired`` on a read), in
    deadline order; at most ``limit``."""
    p = payments.c
    rows = connection.execute(
        payments_query()
        .where(
            p.two_phase.is_(True),
            p.hold_expires_at_ns > after_ns,
            p.hold_expires_at_ns <= until_ns,
            p.status.in_([PaymentStatus.AUTHORIZED.value, PaymentStatus.EXPIRED.value]),
        )
        .order_by(p.hold_expires_at_ns, p.id)
        .limit(max(1, min(limit, LAPSED_HOLDS_MAX)))
    ).all()
    return read_payments(connection, rows)
