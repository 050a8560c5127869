"""Two-phase payments after the authorization: capture (all or part) and void.

A settlement voids every leg of the hold and posts the captured amount as a purchase in one
linked chain (both or neither); the part of the limits the hold took and did not use is given
back when the record settles.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import sqlalchemy as sa

from flashpay.cards.service import (
    Card,
)
from flashpay.errors import InvariantError
from flashpay.idempotency import (
    Effect,
    IdempotencyTag,
    bind_effects,
)
from flashpay.institutions.chart import (
    LEDGER_CNY,
    TransferCode,
)
from flashpay.ledger import CreateTransferResult, Transfer, TransferFlags
from flashpay.ledger.ids import derive_id
from flashpay.merchants.service import (
    Merchant,
    get_merchants,
)
from flashpay.money import Money
from flashpay.payments import limits
from flashpay.payments.attempts import (
    EFFECT_SETTLEMENT,
    HoldSettlement,
    Payment,
    PaymentStatus,
    fen,
)
from flashpay.payments.errors import (
    PaymentError,
    PaymentRefusal,
)
from flashpay.payments.legs import (
    chain_of,
    ledger_ids,
    post_chains,
    purchase_legs,
)
from flashpay.payments.models import (
    payment_events,
    payments,
)
from flashpay.payments.queries import (
    expire_if_due,
)
from flashpay.payments.receipts import (
    payment_commitment,
)
from flashpay.payments.records import (
    bound_payments,
    cards_and_salts,
    event_row,
    next_seqs,
    payments_by_id,
)
from flashpay.platform import Platform


def settle_holds(
    *, platform: Platform, requests: Sequence[HoldSettlement]
) -> list[Payment | PaymentError]:
    """Capture or void a batch of authorizations (a car park's exits, an hotel's check-outs):
    each hold is voided and the captured amount posted as a purchase in one linked chain (both
    or neither), every chain in one ledger batch, the records in one transaction. A request
    that cannot be carried out answers its ``PaymentError`` in its place. A request whose
    Idempotency-Key is bound already is answered with its payment as it now is."""
    bound = bound_payments(platform, [r.idempotency for r in requests], EFFECT_SETTLEMENT)
    if bound:
        done = payments_by_id(platform, bound.values())
        fresh = [r for r in requests if r.idempotency not in bound]
        rest = iter(settle_holds(platform=platform, requests=fresh)) if fresh else iter(())
        return [
            done[bound[r.idempotency]] if r.idempotency in bound else next(rest) for r in requests
        ]
    ids = sorted({r.payment_id for r in requests})
    found = payments_by_id(platform, ids)
    parts = cards_and_salts(platform, ids)
    shops = get_merchants(
        platform=platform, merchant_ids={p.merchant_id for p in found.values() if p.merchant_id}
    )
    answers: list[Payment | PaymentError | None] = []
    going: list[tuple[int, Payment, Card, int]] = []  # (answer index, payment, card, amount)
    chains: list[list[Transfer]] = []
    commitments: dict[int, bytes] = {}
    taken: set[int] = set()
    for n, request in enumerate(requests):
        p = found.get(request.payment_id)
        if p is None or p.merchant_id != request.merchant_id:
            answers.append(PaymentError(PaymentRefusal.NOT_FOUND, "payment not found"))
            continue
        if p.status is not PaymentStatus.AUTHORIZED or p.id in taken:
            status = "being settled" if p.id in taken else p.status.value
            answers.append(PaymentError(PaymentRefusal.NOT_AUTHORIZED, f"the payment is {status}"))
            continue
        if not 0 <= request.fen <= p.amount:
            answers.append(
                PaymentError(
                    PaymentRefusal.INVALID_AMOUNT, "capture between ¥0.01 and the authorized amount"
                )
            )
            continue
        taken.add(p.id)
        card, salt = parts[p.id]
        chain = _settlement_chain(platform, p, card, shops[request.merchant_id], request.fen)
        commitments[chain[0].id] = payment_commitment(salt, p.id, "capture", request.fen)
        chains.append(chain)
        going.append((n, p, card, request.fen))
        answers.append(None)
    settled: list[tuple[Payment, Card, int]] = []
    for (n, p, card, amount), results in zip(
        going, post_chains(platform, chains, commitments), strict=True
    ):
        if all(r in (CreateTransferResult.OK, CreateTransferResult.EXISTS) for r in results):
            settled.append((p, card, amount))
        elif CreateTransferResult.PENDING_TRANSFER_EXPIRED in results:
            answers[n] = expire_if_due(platform, p)
        else:
            refused = sorted(set(results))
            answers[n] = PaymentError(
                PaymentRefusal.HOLD_NOT_SETTLED, f"the ledger refused: {refused}"
            )
    now = platform.clock.now_ns()
    tags = {r.payment_id: r.idempotency for r in requests if r.idempotency is not None}
    done = _record_settlements(platform, settled, now, tags)
    for n, p, _, _ in going:
        if answers[n] is None:
            answers[n] = done[p.id]
    return [a for a in answers if a is not None]


def _settlement_chain(
    platform: Platform, p: Payment, card: Card, merchant: Merchant, amount: int
) -> list[Transfer]:
    """Void every leg of the hold, then post ``amount`` as a purchase; one linked chain."""
    hold_ids = ledger_ids(p.id, "hold")
    held = purchase_legs(platform, card, merchant, p.amount)
    voids = [
        Transfer(derive_id("flashpay.payment", f"{p.id}:void:{n}"), 0, 0, 0, LEDGER_CNY,
                 TransferCode.PURCHASE_HOLD, flags=TransferFlags.VOID_PENDING_TRANSFER
                 | TransferFlags.LINKED, pending_id=hold_ids[n], user_data_64=p.id)
        for n, leg in enumerate(held) if leg[2] > 0
    ]  # fmt: skip
    posts = (
        chain_of(purchase_legs(platform, card, merchant, amount), ledger_ids(p.id, "capture"),
                   TransferCode.PURCHASE, p.id)
        if amount else []
    )  # fmt: skip
    chain = voids + posts
    if not posts:
        last = chain[-1]
        chain[-1] = Transfer(last.id, 0, 0, 0, LEDGER_CNY, last.code,
                             flags=TransferFlags.VOID_PENDING_TRANSFER, pending_id=last.pending_id,
                             user_data_64=p.id)  # fmt: skip
    return chain


def _record_settlements(
    platform: Platform,
    settled: Sequence[tuple[Payment, Card, int]],
    now: int,
    tags: Mapping[int, IdempotencyTag],
) -> dict[int, Payment]:
    """Complete (or void) the records of posted settlements in one transaction, giving back
    the part of the limits a hold took and did not use, and binding the Idempotency-Key (in
    ``tags``, by payment id) of each one it settled; the payments as they now are."""
    if not settled:
        return {}
    with platform.engine.begin() as connection:
        mine = set(connection.execute(
            payments.update()
            .where(payments.c.id.in_([p.id for p, _, _ in settled]),
                   payments.c.status == PaymentStatus.AUTHORIZED.value)
            .values(updated_at_ns=now)
            .returning(payments.c.id)
        ).scalars())  # fmt: skip
        ours = [(p, card, amount) for p, card, amount in settled if p.id in mine]
        if not ours:
            return {p.id: p for p, _, _ in settled}
        bind_effects(connection, {
            tags[p.id]: Effect(EFFECT_SETTLEMENT, p.id) for p, _, _ in ours if p.id in tags
        }, now_ns=now)  # fmt: skip
        seqs = next_seqs(connection, [p.id for p, _, _ in ours])
        connection.execute(_SETTLE, [
            {"i": p.id, "s": _settled_status(amount).value, "c": amount} for p, _, amount in ours
        ])  # fmt: skip
        connection.execute(payment_events.insert(), [
            event_row(p.id, seqs[p.id], _settled_status(amount), amount, now)
            for p, _, amount in ours
        ])  # fmt: skip
        given_back = []
        for p, card, amount in ours:
            if amount < p.amount:  # the part of the limits the hold took and did not use
                if p.user_id is None:
                    raise InvariantError("an authorization has its payer")
                scopes = [f"qr:user:{p.user_id}", f"card:{card.id}"]
                if not p.pin_verified:
                    scopes.append(f"free:user:{p.user_id}")
                given_back.append((limits.beijing_day(p.created_at_ns), p.amount - amount, scopes))
        for day in sorted({day for day, _, _ in given_back}):
            limits.release_many(connection, day=day, given_back=[
                (amount, scopes) for d, amount, scopes in given_back if d == day
            ])  # fmt: skip
    return {
        p.id: dataclasses.replace(
            p, status=_settled_status(amount), captured=amount, updated_at_ns=now
        )
        if p.id in mine
        else p
        for p, _, amount in settled
    }


def _settled_status(amount: int) -> PaymentStatus:
    return PaymentStatus.COMPLETED if amount else PaymentStatus.VOIDED


_SETTLE = (
    payments.update()
    .where(payments.c.id == sa.bindparam("i"))
    .values(status=sa.bindparam("s"), captured=sa.bindparam("c"))
)


def _settle_one(platform: Platform, request: HoldSettlement) -> Payment:
    [answer] = settle_holds(platform=platform, requests=[request])
    if isinstance(answer, PaymentError):
        raise answer
    return answer


def capture(
    *, platform: Platform, merchant_id: int, payment_id: int, amount: Money,
    idempotency: IdempotencyTag | None = None,
) -> Payment:  # fmt: skip
    """Capture an authorization, all or part (see ``settle_holds``)."""
    if fen(amount) <= 0:
        raise PaymentError(
            PaymentRefusal.INVALID_AMOUNT, "capture between ¥0.01 and the authorized amount"
        )
    return _settle_one(platform, HoldSettlement(merchant_id, payment_id, amount, idempotency))


def void(
    *, platform: Platform, merchant_id: int, payment_id: int,
    idempotency: IdempotencyTag | None = None,
) -> Payment:  # fmt: skip
    """Release an authorization's hold (see ``settle_holds``)."""
    return _settle_one(platform, HoldSettlement(merchant_id, payment_id, Money.of(0), idempotency))
