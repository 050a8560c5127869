"""Dynamic orders: a till's POS asks for an order (amount, bill number, expiry ≤ 15 minutes) and
shows its dynamic code; the order is payable once (the payment claims it through
``order_claims`` with a conditional UPDATE, so two concurrent payers cannot both pay it). Many
tills' requests go in one transaction and one statement (``create_orders``)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from flashpay.clock import NS_PER_SECOND
from flashpay.db import autocommit
from flashpay.idempotency import (
    Effect,
    EffectConflictError,
    IdempotencyTag,
    bind_effects,
    find_effects,
)
from flashpay.merchants.codes import merchant_code_fields, order_payload
from flashpay.merchants.models import qr_orders
from flashpay.merchants.records import (
    ORDER_SECONDS_MAX,
    Merchant,
    MerchantError,
    MerchantRefusal,
    Order,
    Terminal,
    order_from_row,
)
from flashpay.money import Money
from flashpay.platform import Platform
from flashpay.qr.merchant_codes import dynamic_code


@dataclass(frozen=True, slots=True)
class OrderRequest:
    merchant: Merchant
    terminal: Terminal
    amount: int  # fen
    bill_number: str
    expires_in_seconds: int = ORDER_SECONDS_MAX
    idempotency: IdempotencyTag | None = None  # the caller's key, bound to the order


def _order_refusal(request: OrderRequest) -> MerchantError | None:
    if request.amount <= 0:
        return MerchantError(MerchantRefusal.INVALID_AMOUNT, "an order's amount is positive")
    if not 1 <= request.expires_in_seconds <= ORDER_SECONDS_MAX:
        return MerchantError(
            MerchantRefusal.INVALID_EXPIRY, "an order expires within 1 s to 15 minutes"
        )
    bill = request.bill_number
    if not (1 <= len(bill) <= 25 and bill.isprintable()):
        return MerchantError(
            MerchantRefusal.INVALID_BILL_NUMBER, "a bill number is 1–25 characters"
        )
    return None


def create_orders(
    *, platform: Platform, requests: Sequence[OrderRequest]
) -> list[tuple[Order, str] | MerchantError]:
    """Dynamic orders and their QR payloads for a batch of tills' requests, in one transaction
    and one statement: each answer in its request's place, a refused request (a bad amount,
    expiry or bill number, or a bill number the merchant has used — 409) as its
    ``MerchantError`` while the others go on. A request whose Idempotency-Key is bound already
    is answered with the order it created."""
    for run in range(2):
        try:
            return _create_orders(platform, requests)
        except EffectConflictError:
            if run:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _create_orders(
    platform: Platform, requests: Sequence[OrderRequest]
) -> list[tuple[Order, str] | MerchantError]:
    tags = [r.idempotency for r in requests]
    bound: dict[IdempotencyTag, Effect] = {}
    if any(tags):
        with autocommit(platform.engine) as connection:
            bound = find_effects(connection, tags)
    if bound:
        fresh = [r for r in requests if r.idempotency not in bound]
        rest = iter(_create_orders(platform, fresh)) if fresh else iter(())
        with autocommit(platform.engine) as connection:
            made = {o.id: o for o in map(order_from_row, connection.execute(
                sa.select(qr_orders).where(
                    qr_orders.c.id.in_(sorted(e.effect_id for e in bound.values())))
            ))}  # fmt: skip
        out: list[tuple[Order, str] | MerchantError] = []
        for r in requests:
            if r.idempotency not in bound:
                out.append(next(rest))
                continue
            order = made[bound[r.idempotency].effect_id]
            out.append((order, order_payload(platform=platform, merchant=r.merchant,
                                             order=order)))  # fmt: skip
        return out
    now = platform.clock.now_ns()
    answers: list[tuple[Order, str] | MerchantError | None] = [None] * len(requests)
    rows: dict[tuple[int, str], tuple[int, dict[str, object]]] = {}
    for n, request in enumerate(requests):
        key = (request.merchant.id, request.bill_number)
        refusal = _order_refusal(request) or (_duplicate_bill() if key in rows else None)
        if refusal is not None:
            answers[n] = refusal
            continue
        rows[key] = (n, {
            "merchant_id": request.merchant.id, "terminal_id": request.terminal.id,
            "bill_number": request.bill_number, "amount": request.amount, "currency": "CNY",
            "status": "open", "payment_id": None, "created_at_ns": now,
            "expires_at_ns": now + request.expires_in_seconds * NS_PER_SECOND,
        })  # fmt: skip
    inserted: dict[tuple[int, str], int] = {}
    if rows:
        values = [row for _, row in rows.values()]
        with platform.engine.begin() as connection:
            insert = (postgresql if connection.dialect.name == "postgresql" else sqlite).insert
            statement = (
                insert(qr_orders)
                .on_conflict_do_nothing()
                .returning(qr_orders.c.id, qr_orders.c.merchant_id, qr_orders.c.bill_number)
            )
            # executemany of one cached statement (SQLAlchemy's insertmanyvalues): a multi-row
            # VALUES would be compiled anew for every batch size.
            for order_id, merchant_id, bill in connection.execute(statement, values):
                inserted[(int(merchant_id), str(bill))] = int(order_id)
            tagged = {
                (n, tag): key
                for key, (n, _) in rows.items()
                if key in inserted and (tag := requests[n].idempotency) is not None
            }
            bind_effects(connection, {
                tag: Effect("order", inserted[key]) for (_, tag), key in tagged.items()
            }, now_ns=now)  # fmt: skip
    for key, (n, row) in rows.items():
        if key not in inserted:
            answers[n] = _duplicate_bill()
            continue
        request = requests[n]
        order = order_from_row({**row, "id": inserted[key]})
        payload = dynamic_code(
            merchant_code_fields(platform, request.merchant, request.terminal),
            amount=Money.of(request.amount, "CNY"),
            bill_number=request.bill_number,
            reference=f"O{order.id}",
        )
        answers[n] = (order, payload)
    return [answer for answer in answers if answer is not None]


def _duplicate_bill() -> MerchantError:
    return MerchantError(MerchantRefusal.DUPLICATE_BILL_NUMBER, "this bill number exists")


def create_order(
    *,
    platform: Platform,
    merchant: Merchant,
    terminal: Terminal,
    amount: int,
    bill_number: str,
    expires_in_seconds: int = ORDER_SECONDS_MAX,
    idempotency: IdempotencyTag | None = None,
) -> tuple[Order, str]:
    """A dynamic order and its QR payload; the same bill number twice is a 409."""
    request = OrderRequest(merchant, terminal, amount, bill_number, expires_in_seconds,
                           idempotency)  # fmt: skip
    [answer] = create_orders(platform=platform, requests=[request])
    if isinstance(answer, MerchantError):
        raise answer
    return answer


def get_order(*, platform: Platform, merchant_id: int, order_id: int) -> Order | None:
    with autocommit(platform.engine) as connection:
        row = connection.execute(
            sa.select(qr_orders).where(
                qr_orders.c.id == order_id, qr_orders.c.merchant_id == merchant_id
            )
        ).first()
    return None if row is None else order_from_row(row)


def orders_by_bill(
    *, platform: Platform, keys: Collection[tuple[int, str]]
) -> dict[tuple[int, str], Order]:
    """Orders by (merchant id, bill number), for a batch, in one query."""
    if not keys:
        return {}
    with autocommit(platform.engine) as connection:
        rows = connection.execute(
            sa.select(qr_orders).where(
                sa.tuple_(qr_orders.c.merchant_id, qr_orders.c.bill_number).in_(sorted(keys))
            )
        )
        return {
            (order.merchant_id, order.bill_number): order for order in map(order_from_row, rows)
        }
