"""Reading payments: one payment (expired on read when its hold has passed), its history, and a
user's or a merchant's list.
"""

from __future__ import annotations

import sqlalchemy as sa

from flashpay.db import autocommit
from flashpay.errors import InvariantError
from flashpay.merchants.order_claims import terminal_ids_with_code
from flashpay.payments.attempts import (
    Payment,
    PaymentEvent,
    PaymentStatus,
)
from flashpay.payments.models import (
    payment_events,
    payments,
)
from flashpay.payments.records import (
    add_event,
    load_payment,
    next_seq,
    payments_query,
    read_payments,
)
from flashpay.platform import Platform


def get_payment(
    *, platform: Platform, payment_id: int, user_id: int | None = None,
    merchant_id: int | None = None,
) -> Payment | None:  # fmt: skip
    """A payment its payer or its merchant may see; ``None`` for anyone else (a 404)."""
    found = load_payment(platform, payment_id)
    if found is None:
        return None
    if user_id is not None and found.user_id == user_id:
        return expire_if_due(platform, found)
    if merchant_id is not None and found.merchant_id == merchant_id:
        return expire_if_due(platform, found)
    return None


def expire_if_due(platform: Platform, payment: Payment) -> Payment:
    """An authorization past its hold is expired (the ledger has released the hold)."""
    now = platform.clock.now_ns()
    if (
        payment.status is PaymentStatus.AUTHORIZED
        and payment.hold_expires_at_ns is not None
        and payment.hold_expires_at_ns <= now
    ):
        platform.ledger.expire_pending_transfers()
        with platform.engine.begin() as connection:
            updated = connection.execute(
                payments.update()
                .where(payments.c.id == payment.id, payments.c.status == "authorized")
                .values(status=PaymentStatus.EXPIRED.value, updated_at_ns=now)
            ).rowcount
            if updated:
                add_event(connection, payment.id, next_seq(connection, payment.id),
                       PaymentStatus.EXPIRED, payment.amount, now)  # fmt: skip
        reloaded = load_payment(platform, payment.id)
        if reloaded is None:
            raise InvariantError("a payment that just expired is still recorded")
        return reloaded
    return payment


def history(*, platform: Platform, payment_id: int) -> list[PaymentEvent]:
    with autocommit(platform.engine) as connection:
        rows = connection.execute(
            sa.select(payment_events)
            .where(payment_events.c.payment_id == payment_id)
            .order_by(payment_events.c.seq)
        ).all()
    return [
        PaymentEvent(int(r.seq), PaymentStatus(r.status), int(r.amount), int(r.at_ns), r.detail)
        for r in rows
    ]


def list_payments(
    *,
    platform: Platform,
    user_id: int | None = None,
    merchant_id: int | None = None,
    day: str | None = None,
    terminal: str | None = None,
    before_id: int | None = None,
    limit: int = 20,
) -> list[Payment]:
    """A user's or a merchant's payments, newest first; merchants filter by day and terminal."""
    query = payments_query()
    if user_id is not None:
        query = query.where(payments.c.user_id == user_id)
    if merchant_id is not None:
        query = query.where(payments.c.merchant_id == merchant_id)
    if day is not None:
        query = query.where(payments.c.day == day)
    if before_id is not None:
        query = query.where(payments.c.id < before_id)
    with autocommit(platform.engine) as connection:
        if terminal is not None:
            ids = terminal_ids_with_code(connection, terminal, merchant_id)
            query = query.where(payments.c.terminal_id.in_(ids))
        rows = connection.execute(query.order_by(payments.c.id.desc()).limit(limit)).all()
        return read_payments(connection, rows)
