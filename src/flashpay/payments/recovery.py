"""Settling payments a dead process left ``created``, behind a fence on their ledger ids
(``flashpay.payments.fence``): completed (or authorized for a hold) if their chain posted
first, else declined ``processing_error`` with their limits, order and discount given back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa

from flashpay.clock import NS_PER_SECOND
from flashpay.db import autocommit
from flashpay.merchants import order_claims
from flashpay.payments import limits
from flashpay.payments.attempts import (
    DeclineReason,
    PaymentKind,
    PaymentStatus,
)
from flashpay.payments.fence import fence
from flashpay.payments.legs import (
    ledger_ids,
)
from flashpay.payments.models import (
    payments,
)
from flashpay.payments.receipts import (
    voucher,
)
from flashpay.payments.records import (
    add_event,
    next_seq,
)
from flashpay.payments.refunds import (
    recover_refunds,
)
from flashpay.payments.stages import release_adjustments
from flashpay.platform import Platform


def _decline_created(
    connection: sa.Connection,
    payment_id: int,
    amount: int,
    reason: DeclineReason,
    now: int,
    day: str,
    scopes: Iterable[str],
    order_id: int | None,
) -> None:
    """Decline a ``created`` payment and give back what its record's transaction took (limits,
    the order) — only if this UPDATE settled it, so a racing recovery cannot give twice."""
    settled = connection.execute(
        payments.update()
        .where(payments.c.id == payment_id, payments.c.status == "created")
        .values(status=PaymentStatus.DECLINED.value, decline_reason=reason.value, updated_at_ns=now)
    ).rowcount
    if settled != 1:
        return
    add_event(connection, payment_id, next_seq(connection, payment_id), PaymentStatus.DECLINED,
           amount, now, reason.value)  # fmt: skip
    limits.release_many(connection, day=day, given_back=[(amount, list(scopes))])
    release_adjustments(connection, [payment_id], now)  # the promotion stage's take, if any
    if order_id is not None:  # the order can be paid again (with another card)
        order_claims.reopen(connection, [(order_id, payment_id)])


def recover_payments(*, platform: Platform, older_than_seconds: int = 60) -> int:
    """Settle payments a dead process left ``created`` (after their record, before or after the
    ledger post): behind a fence on their ledger ids (``flashpay.payments.fence``), completed
    (or authorized for a hold) with their voucher if their chain posted first, else declined
    ``processing_error`` with their limits and order given back — and refunds left ``created``
    the same way (``recover_refunds``). Safe to run at any time, from any process, even beside
    a request still in flight; the age only spares payments that are merely slow. Returns how
    many payments and refunds it settled."""
    cutoff = platform.clock.now_ns() - older_than_seconds * NS_PER_SECOND
    with autocommit(platform.engine) as connection:
        ids = [int(i) for i in connection.execute(
            sa.select(payments.c.id).where(
                payments.c.status == "created", payments.c.created_at_ns < cutoff
            )
        ).scalars()]  # fmt: skip
    return settle_created_payments(platform, ids) + recover_refunds(platform, cutoff)


def settle_created_payments(platform: Platform, payment_ids: Sequence[int]) -> int:
    """Settle those of ``payment_ids`` still ``created``, behind a fence; how many there were."""
    if not payment_ids:
        return 0
    with autocommit(platform.engine) as connection:
        rows = connection.execute(
            sa.select(payments).where(
                payments.c.id.in_(sorted(payment_ids)), payments.c.status == "created"
            )
        ).all()
    if not rows:
        return 0
    posted = fence(platform, [
        (int(row.id), ledger_ids(int(row.id), "hold" if row.two_phase else "purchase"))
        for row in rows
    ])  # fmt: skip
    for row in rows:
        payment_id, amount = int(row.id), int(row.amount)
        now = platform.clock.now_ns()
        with platform.engine.begin() as connection:
            if payment_id in posted:
                hold = platform.ledger.lookup_transfers(ledger_ids(payment_id, "hold")[:1]) if (
                    row.two_phase) else []  # fmt: skip
                status = PaymentStatus.AUTHORIZED if row.two_phase else PaymentStatus.COMPLETED
                hold_end = (
                    hold[0].timestamp + hold[0].timeout_seconds * NS_PER_SECOND if hold else None
                )
                settled = connection.execute(
                    payments.update()
                    .where(payments.c.id == payment_id, payments.c.status == "created")
                    .values(
                        status=status.value,
                        voucher=voucher(row.day, payment_id),
                        captured=0 if row.two_phase else amount,
                        updated_at_ns=now,
                        hold_expires_at_ns=hold_end,
                    )
                ).rowcount
                if settled == 1:
                    add_event(connection, payment_id, next_seq(connection, payment_id), status,
                           amount, now, "recovered")  # fmt: skip
                continue
            scopes = [f"qr:user:{row.user_id}", f"card:{row.card_id}"]
            if not row.pin_verified:
                scopes.append(f"free:user:{row.user_id}")
            if row.kind == PaymentKind.MPM_STATIC.value:
                scopes.append(f"static:user:{row.user_id}")
            _decline_created(connection, payment_id, amount, DeclineReason.PROCESSING_ERROR,
                             now, row.day, scopes, row.order_id)  # fmt: skip
    return len(rows)
