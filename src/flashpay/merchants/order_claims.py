"""A payment's claim on a dynamic order, and what a payment shows of its merchant, for payments.

Every function takes the caller's ``connection``: payments claims an order in the same
transaction that records the payment (so a rolled-back payment never leaves an order paid), and
gives it back in the one that declines it. Only an ``open`` order can be claimed: exactly once
under concurrency, since the open orders are read ``FOR UPDATE`` (on SQLite the caller's first
statement was a write, so the database's write lock is held).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from flashpay.merchants.models import merchants, qr_orders, terminals

_PAY = (
    qr_orders.update()
    .where(qr_orders.c.id == sa.bindparam("o"))
    .values(status="paid", payment_id=sa.bindparam("p"))
)
_REOPEN = (
    qr_orders.update()
    .where(qr_orders.c.id == sa.bindparam("o"), qr_orders.c.payment_id == sa.bindparam("p"))
    .values(status="open", payment_id=None)
)


def open_orders(connection: sa.Connection, order_ids: Collection[int]) -> set[int]:
    """Those of ``order_ids`` still open, locked until the caller's transaction ends."""
    if not order_ids:
        return set()
    return {int(i) for i in connection.execute(
        sa.select(qr_orders.c.id)
        .where(qr_orders.c.id.in_(sorted(order_ids)), qr_orders.c.status == "open")
        .with_for_update()
    ).scalars()}  # fmt: skip


def mark_paid(connection: sa.Connection, claims: Sequence[tuple[int, int]]) -> None:
    """Mark each (order id, payment id) paid by that payment (orders read open just before)."""
    if claims:
        connection.execute(_PAY, [{"o": order_id, "p": payment} for order_id, payment in claims])


def reopen(connection: sa.Connection, claims: Sequence[tuple[int, int]]) -> None:
    """Give each (order id, payment id) back: open again if that payment still holds it (the
    order can be paid again, with another card)."""
    if claims:
        connection.execute(_REOPEN, [{"o": order_id, "p": pay} for order_id, pay in claims])


@dataclass(frozen=True, slots=True)
class PaymentLabels:
    """What a payment's reader shows of its merchant: names, terminal codes, bill numbers."""

    merchant_names: dict[int, str]
    terminal_codes: dict[int, str]
    bill_numbers: dict[int, str]


def payment_labels(
    connection: sa.Connection,
    *,
    merchant_ids: Collection[int],
    terminal_ids: Collection[int],
    order_ids: Collection[int],
) -> PaymentLabels:
    """The display name of merchants, the code of terminals and the bill number of orders, by
    id, in one statement (a UNION of the three look-ups)."""
    parts = []
    if merchant_ids:
        parts.append(sa.select(sa.literal("m").label("k"), merchants.c.id,
                               merchants.c.display_name.label("v"))
                     .where(merchants.c.id.in_(sorted(merchant_ids))))  # fmt: skip
    if terminal_ids:
        parts.append(sa.select(sa.literal("t").label("k"), terminals.c.id,
                               terminals.c.code.label("v"))
                     .where(terminals.c.id.in_(sorted(terminal_ids))))  # fmt: skip
    if order_ids:
        parts.append(sa.select(sa.literal("o").label("k"), qr_orders.c.id,
                               qr_orders.c.bill_number.label("v"))
                     .where(qr_orders.c.id.in_(sorted(order_ids))))  # fmt: skip
    found: dict[str, dict[int, str]] = {"m": {}, "t": {}, "o": {}}
    if parts:
        for kind, key, value in connection.execute(sa.union_all(*parts)):
            if value is not None:
                found[str(kind)][int(key)] = str(value)
    return PaymentLabels(found["m"], found["t"], found["o"])


def terminal_ids_with_code(
    connection: sa.Connection, code: str, merchant_id: int | None = None
) -> list[int]:
    """The ids of terminals with ``code`` (at ``merchant_id`` when given)."""
    query = sa.select(terminals.c.id).where(terminals.c.code == code)
    if merchant_id is not None:
        query = query.where(terminals.c.merchant_id == merchant_id)
    return [int(i) for i in connection.execute(query).scalars()]


def merchant_accounts(connection: sa.Connection) -> Iterator[tuple[int, int]]:
    """Every merchant's ``(acquirer_id, ledger_account_id)``: the acquirers' merchant payables,
    for the network's books (``flashpay.books``)."""
    for row in connection.execute(
        sa.select(merchants.c.acquirer_id, merchants.c.ledger_account_id)
    ):
        yield int(row.acquirer_id), int(row.ledger_account_id)
