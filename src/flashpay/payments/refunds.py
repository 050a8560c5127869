"""Refunds: a reversing chain, to the card the payment came from, for the difference between the
split of the refunded total after and before — so partial refunds add up to an exact reversal.

A discounted payment's refund also takes back the discount pro rata, per share
(``promotions.refund_share_minor``: ``floor(D·after/A) − floor(D·before/A)``, the floors
telescope, so the refunds of a payment return exactly each share's discount, to the fen, once
all of ``A`` is refunded): the card gets the refund less that part, and each funder's
``promotion_expense`` gets its part back through the network (the discount legs reversed). A
full refund also gives the budget, the caps and the coupon back (``stages.refunded_in_full``).

The refund's record is written ``created`` in the transaction that takes its amount; a crash
before its ledger posting is settled by ``recover_refunds`` behind a fence on its ledger ids.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from flashpay.db import autocommit
from flashpay.idempotency import (
    Effect,
    EffectConflictError,
    IdempotencyTag,
    bind_effects,
)
from flashpay.institutions.chart import (
    TransferCode,
)
from flashpay.ledger import CreateTransferResult
from flashpay.merchants.service import (
    get_merchants,
)
from flashpay.money import Money
from flashpay.payments.attempts import (
    EFFECT_REFUND,
    RERUNS_MAX,
    Payment,
    PaymentStatus,
    RefundRequest,
)
from flashpay.payments.errors import (
    PaymentError,
    PaymentRefusal,
)
from flashpay.payments.fence import fence
from flashpay.payments.legs import (
    DISCOUNT_SLOTS,
    Leg,
    chain_of,
    discount_legs,
    ledger_ids,
    post_chains,
    priced_chain,
    purchase_legs,
)
from flashpay.payments.models import (
    payment_events,
    payment_refunds,
    payments,
)
from flashpay.payments.plans import Share
from flashpay.payments.receipts import (
    payment_commitment,
)
from flashpay.payments.records import (
    bound_payments,
    cards_and_salts,
    event_row,
    next_numbers,
    next_seqs,
    payments_by_id,
)
from flashpay.payments.stages import refunded_in_full
from flashpay.platform import Platform
from flashpay.promotions import refund_share_minor

_REFUNDED = (
    payments.update().where(payments.c.id == sa.bindparam("i")).values(refunded=sa.bindparam("r"))
)
_REFUND_STATUS = (
    payments.update().where(payments.c.id == sa.bindparam("i")).values(status=sa.bindparam("s"))
)
_UNREFUND = (
    payments.update()
    .where(payments.c.id == sa.bindparam("i"))
    .values(refunded=payments.c.refunded - sa.bindparam("a"))
)


def refund_many(
    *, platform: Platform, requests: Sequence[RefundRequest]
) -> list[Payment | PaymentError]:
    """Refund a batch (a merchant's returns of the day, several merchants at once), each to the
    card it came from, as if one after another: several refunds of one payment add up to at
    most what was paid (``refund_exceeds_payment`` for the one that would pass it). The
    refunded totals are taken under the rows' locks in one transaction, every reversing chain
    goes in one ledger batch, and the records complete in one transaction; a refund the ledger
    refuses gives its amount back. A request that cannot be carried out answers its
    ``PaymentError`` in its place. A request whose Idempotency-Key is bound already is
    answered with its payment (its refund settled first if a crash left it ``created``)."""
    for run in range(RERUNS_MAX + 1):
        try:
            return _refund_many(platform, requests)
        except EffectConflictError:
            if run == RERUNS_MAX:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _refund_many(
    platform: Platform, requests: Sequence[RefundRequest]
) -> list[Payment | PaymentError]:
    bound = bound_payments(platform, [r.idempotency for r in requests], EFFECT_REFUND)
    if bound:
        with autocommit(platform.engine) as connection:
            created = connection.execute(
                sa.select(payment_refunds.c.payment_id, payment_refunds.c.seq).where(
                    payment_refunds.c.payment_id.in_(sorted(set(bound.values()))),
                    payment_refunds.c.status == "created",
                )
            ).all()
        settle_created_refunds(platform, [(int(i), int(n)) for i, n in created])
        done = payments_by_id(platform, bound.values())
        fresh = [r for r in requests if r.idempotency not in bound]
        rest = iter(_refund_many(platform, fresh)) if fresh else iter(())
        return [
            done[bound[r.idempotency]] if r.idempotency in bound else next(rest) for r in requests
        ]
    ids = sorted({r.payment_id for r in requests})
    found = payments_by_id(platform, ids)
    answers: list[Payment | PaymentError | None] = []
    for request in requests:
        p = found.get(request.payment_id)
        if p is None or p.merchant_id != request.merchant_id:
            answers.append(PaymentError(PaymentRefusal.NOT_FOUND, "payment not found"))
        elif p.status not in (PaymentStatus.COMPLETED, PaymentStatus.PARTIALLY_REFUNDED):
            answers.append(
                PaymentError(PaymentRefusal.NOT_REFUNDABLE, f"the payment is {p.status.value}")
            )
        elif request.fen <= 0:
            answers.append(
                PaymentError(PaymentRefusal.INVALID_AMOUNT, "a refund is a positive amount")
            )
        else:
            answers.append(None)
    asked = [(n, r) for n, r in enumerate(requests) if answers[n] is None]
    if not asked:
        return [a for a in answers if a is not None]
    now = platform.clock.now_ns()
    taken: list[tuple[int, RefundRequest, int, int]] = []  # answer index, request, total, seq
    with platform.engine.begin() as connection:
        # A write first: the rows are locked (and SQLite's write lock held) while deciding.
        state = {int(i): int(refunded) for i, refunded in connection.execute(
            payments.update()
            .where(payments.c.id.in_(sorted({r.payment_id for _, r in asked})))
            .values(updated_at_ns=now)
            .returning(payments.c.id, payments.c.refunded)
        )}  # fmt: skip
        captured = {p.id: p.captured for p in found.values()}
        numbers = _next_refund_numbers(connection, list(state))
        for n, request in asked:
            refunded = state[request.payment_id]
            if refunded + request.fen > captured[request.payment_id]:
                answers[n] = PaymentError(
                    PaymentRefusal.REFUND_EXCEEDS_PAYMENT, "refunds cannot pass what was paid"
                )
                continue
            state[request.payment_id] = refunded + request.fen
            taken.append((n, request, refunded + request.fen, numbers[request.payment_id]))
            numbers[request.payment_id] += 1
        if taken:
            bind_effects(connection, {
                r.idempotency: Effect(EFFECT_REFUND, r.payment_id)
                for _, r, _, _ in taken if r.idempotency is not None
            }, now_ns=now)  # fmt: skip
            connection.execute(_REFUNDED, [{"i": i, "r": total} for i, total in state.items()])
            # The refund's own record, in the transaction that took its amount: a crash before
            # its ledger posting is found and settled by ``recover_payments``.
            connection.execute(payment_refunds.insert(), [
                {"payment_id": r.payment_id, "seq": seq, "amount": r.fen,
                 "status": "created", "created_at_ns": now} for _, r, _, seq in taken
            ])  # fmt: skip
    paying = cards_and_salts(platform, [r.payment_id for _, r, _, _ in taken])
    shops = get_merchants(platform=platform, merchant_ids={r.merchant_id for _, r, *_ in taken})
    chains, commitments = [], {}
    for _, request, total, seq in taken:
        p = found[request.payment_id]
        card, salt = paying[p.id]
        merchant = shops[request.merchant_id]
        after_legs = purchase_legs(platform, card, merchant, total)
        before_legs = purchase_legs(platform, card, merchant, total - request.fen)
        # Reverse each leg by the difference: the partial refunds add up to the full reversal.
        # A leg rounded to the fen is not monotone in the amount (the acquirer's MDR share of
        # ¥10.01 is 0 fen, of ¥6.34 it is 1): a difference below zero is posted forward, not
        # left out — left out, it broke the acquirer's mirror by a fen.
        reverse = [
            (credit, debit, d) if (d := after[2] - prior[2]) >= 0 else (debit, credit, -d)
            for after, prior, (debit, credit, _) in zip(after_legs, before_legs, after_legs,
                                                        strict=True)
        ]  # fmt: skip
        what = f"refund{seq}"
        if p.promotions:
            parts = taken_back(p, total - request.fen, request.fen)
            discounts = [(part, _reversed(discount_legs(platform, card, merchant, part,
                                                        part.discount_minor)))
                         for part in parts]  # fmt: skip
            ids = ledger_ids(p.id, what, 6 + DISCOUNT_SLOTS * len(parts))
            chain = priced_chain(reverse, discounts, ids, TransferCode.PURCHASE, p.id, refund=True)
            commitments[chain[0].id] = payment_commitment(salt, p.id, what, request.fen, parts)
        else:
            chain = chain_of(reverse, ledger_ids(p.id, what), TransferCode.PURCHASE, p.id)
            commitments[chain[0].id] = payment_commitment(salt, p.id, what, request.fen)
        chains.append(chain)
    results = post_chains(platform, chains, commitments)
    outcomes = []
    for (n, request, _, seq), chain_results in zip(taken, results, strict=True):
        posted = all(r in (CreateTransferResult.OK, CreateTransferResult.EXISTS)
                     for r in chain_results)  # fmt: skip
        outcomes.append(_RefundOutcome(request.payment_id, seq, request.fen, posted))
        if not posted:
            refused = sorted(set(chain_results))
            answers[n] = PaymentError(
                PaymentRefusal.REFUND_FAILED, f"the ledger refused: {refused}"
            )
    statuses = _settle_refunds(platform, outcomes, now)
    for n, request, total, _ in taken:
        if answers[n] is None:
            answers[n] = dataclasses.replace(
                found[request.payment_id],
                refunded=total,
                status=statuses.get(request.payment_id, found[request.payment_id].status),
                updated_at_ns=now,
            )
    return [a for a in answers if a is not None]


def taken_back(p: Payment, refunded_before: int, refund: int) -> list[Share]:
    """The part of each of ``p``'s discount shares a refund of ``refund`` (after
    ``refunded_before``) takes back, in the payment's share order (a part may be 0)."""
    return [
        dataclasses.replace(s, discount_minor=refund_share_minor(
            discount_minor=s.discount_minor, amount_minor=p.amount,
            refunded_before_minor=refunded_before, refund_minor=refund))
        for s in p.promotions
    ]  # fmt: skip


def _reversed(legs: list[Leg]) -> list[Leg]:
    return [(credit, debit, amount) for debit, credit, amount in legs]


@dataclass(frozen=True, slots=True)
class _RefundOutcome:
    payment_id: int
    seq: int
    amount: int
    posted: bool  # the reversing chain is in the ledger


def _next_refund_numbers(connection: sa.Connection, payment_ids: Sequence[int]) -> dict[int, int]:
    """Each payment's next refund number (its ledger ids derive from it), read under the
    payment's row lock, so two refunds of one payment never share one."""
    return next_numbers(connection, payment_refunds, payment_ids, after=1)


def _settle_refunds(
    platform: Platform, outcomes: Sequence[_RefundOutcome], now: int
) -> dict[int, PaymentStatus]:
    """Complete the refunds the ledger posted and give back the amount of those it did not, in
    one transaction — only refunds still ``created`` (a racing recovery settled the others from
    the same ledger state); the refunded payments' new status, by payment id."""
    if not outcomes:
        return {}
    key = sa.tuple_(payment_refunds.c.payment_id, payment_refunds.c.seq)
    with platform.engine.begin() as connection:
        mine: set[tuple[int, int]] = set()
        for posted, status in ((True, "completed"), (False, "failed")):
            keys = sorted((o.payment_id, o.seq) for o in outcomes if o.posted is posted)
            if keys:
                mine |= {(int(i), int(n)) for i, n in connection.execute(
                    payment_refunds.update()
                    .where(key.in_(keys), payment_refunds.c.status == "created")
                    .values(status=status)
                    .returning(payment_refunds.c.payment_id, payment_refunds.c.seq)
                )}  # fmt: skip
        ours = [o for o in outcomes if (o.payment_id, o.seq) in mine]
        failed = [{"i": o.payment_id, "a": o.amount} for o in ours if not o.posted]
        if failed:
            connection.execute(_UNREFUND, failed)
        completed = [o for o in ours if o.posted]
        if not completed:
            return {}
        totals = {int(i): (int(r), int(c)) for i, r, c in connection.execute(
            sa.select(payments.c.id, payments.c.refunded, payments.c.captured)
            .where(payments.c.id.in_(sorted({o.payment_id for o in completed})))
        )}  # fmt: skip
        statuses = {
            i: PaymentStatus.REFUNDED if refunded == captured else PaymentStatus.PARTIALLY_REFUNDED
            for i, (refunded, captured) in totals.items()
        }
        connection.execute(_REFUND_STATUS, [{"i": i, "s": s.value} for i, s in statuses.items()])
        # Refunded in full: the promotion stage gives back the budget, caps and coupon (once).
        refunded_in_full(
            connection, [i for i, s in statuses.items() if s is PaymentStatus.REFUNDED], now
        )
        seqs = next_seqs(connection, sorted(statuses))
        events = []
        for o in completed:
            events.append(event_row(o.payment_id, seqs[o.payment_id], statuses[o.payment_id],
                                     o.amount, now, "refund"))  # fmt: skip
            seqs[o.payment_id] += 1
        connection.execute(payment_events.insert(), events)
    return statuses


def recover_refunds(platform: Platform, cutoff: int) -> int:
    """Settle refunds a dead process left ``created`` (after taking their amount, before or
    after the ledger posting). Returns how many."""
    with autocommit(platform.engine) as connection:
        rows = connection.execute(
            sa.select(payment_refunds.c.payment_id, payment_refunds.c.seq).where(
                payment_refunds.c.status == "created", payment_refunds.c.created_at_ns < cutoff
            )
        ).all()
    return settle_created_refunds(platform, [(int(r.payment_id), int(r.seq)) for r in rows])


def settle_created_refunds(platform: Platform, keys: Sequence[tuple[int, int]]) -> int:
    """Settle those refunds (payment id, number) still ``created``, behind a fence on their
    reversing chain's ids: completed if the chain posted first, else failed with the amount
    given back. Returns how many."""
    if not keys:
        return 0
    key = sa.tuple_(payment_refunds.c.payment_id, payment_refunds.c.seq)
    with autocommit(platform.engine) as connection:
        rows = connection.execute(
            sa.select(payment_refunds).where(
                key.in_(sorted(set(keys))), payment_refunds.c.status == "created"
            )
        ).all()
    if not rows:
        return 0
    # A fence is keyed by one record id: the refund's first ledger id stands for the refund.
    ids = {(int(r.payment_id), int(r.seq)): ledger_ids(int(r.payment_id), f"refund{r.seq}")
           for r in rows}  # fmt: skip
    posted = fence(platform, [(chain[0], chain) for chain in ids.values()])
    outcomes = [
        _RefundOutcome(int(r.payment_id), int(r.seq), int(r.amount),
                       ids[(int(r.payment_id), int(r.seq))][0] in posted)
        for r in rows
    ]  # fmt: skip
    _settle_refunds(platform, outcomes, platform.clock.now_ns())
    return len(outcomes)


def refund(
    *, platform: Platform, merchant_id: int, payment_id: int, amount: Money,
    idempotency: IdempotencyTag | None = None,
) -> Payment:  # fmt: skip
    """Refund ``amount`` of a completed payment (a batch of one; see ``refund_many``)."""
    [answer] = refund_many(
        platform=platform,
        requests=[RefundRequest(merchant_id, payment_id, amount, idempotency)],
    )
    if isinstance(answer, PaymentError):
        raise answer
    return answer
