"""The one place a batch of QR payments (scan-to-pay and payment codes, holds included) is
applied, in the order of ``DeclineReason``:

1. verification: the PIN when given (``wrong_pin``, ``pin_locked``, ``pin_not_set``; the
   batch's checks share one strategy, ``flashpay.payments.pins``), else the password-free rules
   (``pin_required`` above the user's threshold); the issuer's checks: card frozen, closed or
   expired;
2. one transaction that records the payments with their PIN outcomes, runs the later stages
   (``flashpay.payments.stages``: ``review``), claims a dynamic order or a payment code
   (``order_already_paid``, ``code_already_used`` — exactly once under concurrency, by a
   conditional UPDATE), and reserves the People's Bank of China limits (``limit_exceeded``:
   all QR payments ≤ the user's daily limit, default ¥5,000; password-free ≤ ¥1,000 a day;
   static codes ≤ ¥500 a day; the card's issuer limit), then prices the payments whose
   claims held (``stages.run_adjustments``: the promotion stage chooses and takes their
   discounts, decision 0019) — so a claim's decline never takes a discount;
3. the ledger: the six linked transfers of ARCHITECTURE.md §4 with the MDR split of the
   merchant's scene (``insufficient_funds`` is the ledger's answer, in the same transaction as
   the posting), with a discount's legs in the same chain (``legs.priced_chain``); a two-phase
   payment posts them as pending transfers with a timeout instead;
4. one transaction completing the records (``completed``/``authorized``) or declining them,
   giving back their limits, orders and discounts (``stages.release_adjustments``).

Ledger ids derive from the payment id, so a retry can never post twice.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import sqlalchemy as sa

from flashpay.clock import NS_PER_SECOND
from flashpay.errors import InvariantError
from flashpay.idempotency import (
    Effect,
    bind_effects,
)
from flashpay.institutions.chart import (
    TransferCode,
)
from flashpay.ledger import CreateTransferResult, Transfer, TransferFlags
from flashpay.ledger.ids import new_id
from flashpay.merchants import order_claims
from flashpay.payments import limits, planning
from flashpay.payments.attempts import (
    EFFECT_PAYMENT,
    Attempt,
    DeclineReason,
    Payment,
    PaymentStatus,
)
from flashpay.payments.legs import (
    DISCOUNT_SLOTS,
    chain_of,
    chain_refusal,
    discount_legs,
    ledger_ids,
    post_chains,
    priced_chain,
    purchase_legs,
)
from flashpay.payments.models import (
    payment_codes,
    payment_events,
    payments,
)
from flashpay.payments.pins import (
    pin_verdicts,
)
from flashpay.payments.plans import Adjustment, shares_json
from flashpay.payments.receipts import (
    payment_commitment,
    voucher,
)
from flashpay.payments.records import (
    event_row,
)
from flashpay.payments.stages import (
    Plan,
    release_adjustments,
    run_adjustments,
    run_stages,
)
from flashpay.platform import Platform
from flashpay.wallet.pin import PinCheck, PinState, record_pin_check

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Record:
    """A payment as its record's transaction wrote it."""

    id: int
    attempt: Attempt
    salt: bytes
    scopes: Mapping[str, int]
    pin_ok: bool
    adjustment: Adjustment | None = None  # a pricing stage's discount (decision 0019)

    @property
    def discount(self) -> int:
        return 0 if self.adjustment is None else self.adjustment.discount_minor


def run_payments(platform: Platform, attempts: list[Attempt]) -> list[Payment]:
    """Verify, record, post and complete the attempts of a batch; their answers, in order."""
    if not attempts:
        return []
    now = platform.clock.now_ns()
    # PIN tries count one after another, as ``record_pin_check`` writes them: a right PIN
    # clears the failures, the fifth wrong one in a row locks the PIN for the later requests.
    asks = [(a.payer.pin, a.pin) for a in attempts if a.payer is not None and a.pin is not None]
    checked = iter(pin_verdicts(platform, now, asks))
    planned: list[Attempt] = []
    before: list[PinState | None] = []
    verdicts: list[PinCheck | None] = []
    for a in attempts:
        state, verdict = (
            next(checked) if a.payer is not None and a.pin is not None else (None, None)
        )
        if a.payer is not None:
            # most attempts keep their reason (none): copy the attempt only when it changes
            reason = planning.payment_decline(a, verdict, now)
            if reason is not a.reason:
                a = replace(a, reason=reason)
        planned.append(a)
        before.append(state)
        verdicts.append(verdict)
    day = limits.beijing_day(now)
    records = [
        _Record(new_id(), a, secrets.token_bytes(16),
                planning.payment_scopes(a, v is PinCheck.OK) if a.payer is not None else {},
                v is PinCheck.OK)
        for a, v in zip(planned, verdicts, strict=True)
    ]  # fmt: skip
    with platform.engine.begin() as connection:
        bind_effects(connection, {
            r.attempt.idempotency: Effect(EFFECT_PAYMENT, r.id)
            for r in records if r.attempt.idempotency is not None
        }, now_ns=now)  # fmt: skip
        for state, verdict in zip(before, verdicts, strict=True):
            if state is not None and verdict is not None:
                record_pin_check(platform=platform, connection=connection, state=state,
                                 verdict=verdict)  # fmt: skip
        records = _run_stages(connection, now, records)
        records = _claim(connection, now, day, records)
        records = _adjust(platform, connection, now, records)
        connection.execute(payments.insert(), [_payment_row(r, now, day) for r in records])
        connection.execute(
            payment_events.insert(),
            [event_row(r.id, 1, _status(r.attempt), r.attempt.amount, now,
                        r.attempt.reason and r.attempt.reason.value) for r in records],
        )  # fmt: skip
    going = [r for r in records if r.attempt.reason is None]
    outcomes = _post(platform, day, going) if going else {}
    declined = _Outcome(PaymentStatus.DECLINED, None, None, 0, None, now)
    # The answers from what we know: no read-back of the rows just written.
    return [_answer(r, outcomes.get(r.id, declined), now) for r in records]


def _plans(records: Sequence[_Record], now: int) -> list[Plan]:
    """The plans of the records still going, with what a pricing stage needs."""
    return [
        Plan(a.kind.value, r.id, payer.user_id, payer.card.id, a.amount, card=payer.card,
             merchant=a.merchant, phone=payer.phone,
             ref=None if a.idempotency is None else a.idempotency.key, at_ns=now,
             two_phase=a.two_phase)
        for r in records
        if (a := r.attempt).reason is None and (payer := a.payer) is not None
    ]  # fmt: skip


def _run_stages(connection: sa.Connection, now: int, records: Sequence[_Record]) -> list[_Record]:
    """The later stages (``flashpay.payments.stages``) over the records still going; a plan a
    stage declines is recorded declined with its reason and claims and posts nothing."""
    declined = run_stages(connection, _plans(records, now))
    return [_declined(r, DeclineReason(declined[r.id])) if r.id in declined else r for r in records]


def _adjust(
    platform: Platform, connection: sa.Connection, now: int, records: Sequence[_Record]
) -> list[_Record]:
    """The pricing stages over the records whose claims held: their discounts, taken in this
    transaction (a record declined later gives them back, ``release_adjustments``)."""
    adjusted = run_adjustments(platform, connection, _plans(records, now))
    return [replace(r, adjustment=adjusted[r.id]) if r.id in adjusted else r for r in records]


def _declined(r: _Record, reason: DeclineReason) -> _Record:
    """``r`` with its (frozen) attempt declined for ``reason``."""
    return replace(r, attempt=replace(r.attempt, reason=reason))


def _status(a: Attempt) -> PaymentStatus:
    return PaymentStatus.DECLINED if a.reason is not None else PaymentStatus.CREATED


def _payment_row(r: _Record, now: int, day: str) -> dict[str, object]:
    a, payer = r.attempt, r.attempt.payer
    return {
        "id": r.id, "kind": a.kind.value,
        "user_id": payer.user_id if payer else None,
        "wallet_card_id": payer.wallet_card_id if payer else None,
        "card_id": payer.card.id if payer else None,
        "merchant_id": a.merchant.id if a.merchant else None,
        "terminal_id": a.terminal.id if a.terminal else None,
        "order_id": a.order_id, "amount": a.amount, "captured": 0, "refunded": 0,
        "currency": "CNY", "status": _status(a).value,
        "decline_reason": a.reason and a.reason.value, "voucher": None,
        "pin_verified": r.pin_ok, "two_phase": a.two_phase, "hold_expires_at_ns": None,
        "commitment_salt": r.salt, "day": day, "created_at_ns": now, "updated_at_ns": now,
        "discount": r.discount,
        "promotions": None if r.adjustment is None else shares_json(r.adjustment.shares),
    }  # fmt: skip


def _answer(r: _Record, outcome: _Outcome, now: int) -> Payment:
    a, payer = r.attempt, r.attempt.payer
    return Payment(
        id=r.id,
        kind=a.kind,
        user_id=payer.user_id if payer else None,
        wallet_card_id=payer.wallet_card_id if payer else None,
        card_display=payer.card.masked if payer else None,
        merchant_id=a.merchant.id if a.merchant else None,
        merchant_name=a.merchant.display_name if a.merchant else None,
        terminal=a.terminal.code if a.terminal else None,
        order_id=a.order_id,
        bill_number=a.bill_number,
        amount=a.amount,
        captured=outcome.captured,
        refunded=0,
        currency="CNY",
        status=outcome.status,
        decline_reason=outcome.reason or a.reason,
        voucher=outcome.voucher,
        pin_verified=r.pin_ok,
        two_phase=a.two_phase,
        hold_expires_at_ns=outcome.hold_expires_at_ns,
        created_at_ns=now,
        updated_at_ns=outcome.updated_at_ns,
        discount=r.discount if outcome.reason is None and a.reason is None else 0,
        promotions=(
            r.adjustment.shares
            if r.adjustment is not None and outcome.reason is None and a.reason is None
            else ()
        ),
    )


_USE_CODE = (
    payment_codes.update()
    .where(payment_codes.c.token == sa.bindparam("t"), payment_codes.c.atc == sa.bindparam("c"))
    .values(used_at_ns=sa.bindparam("at"), payment_id=sa.bindparam("p"))
)


def _claim(
    connection: sa.Connection, now: int, day: str, records: Sequence[_Record]
) -> list[_Record]:
    """The checks that need the database, for the records still going, one after another in
    check order — a dynamic order not yet paid (``order_already_paid``), a payment code not
    yet used (``code_already_used``), the limits (``limit_exceeded``) — so an earlier payment
    of the batch takes what a later one needed; then what they took is written. The limit
    counters are locked first: their first statement is a write, so on SQLite the reads below
    run under the database's write lock; on PostgreSQL the orders and codes are read ``FOR
    UPDATE``. A payment declined for its limits leaves the order open (the user may pay it
    with another card) but uses its code (a code is shown once). The records, with the
    declines of ``planning.claim_decline``."""
    going = [r for r in records if r.attempt.reason is None]
    if not going:
        return list(records)
    counters = limits.Counters(connection, day=day, scopes=(s for r in going for s in r.scopes))
    order_ids = sorted({r.attempt.order_id for r in going if r.attempt.order_id is not None})
    open_orders = order_claims.open_orders(connection, order_ids)
    code_keys = sorted({r.attempt.code_key for r in going if r.attempt.code_key is not None})
    unused_codes = set()
    if code_keys:
        key = sa.tuple_(payment_codes.c.token, payment_codes.c.atc)
        unused_codes = {(str(t), int(c)) for t, c in connection.execute(
            sa.select(payment_codes.c.token, payment_codes.c.atc)
            .where(key.in_(code_keys), payment_codes.c.used_at_ns.is_(None))
            .with_for_update()
        )}  # fmt: skip
    paid_orders: list[tuple[int, int]] = []
    used_codes = []
    declined: dict[int, DeclineReason] = {}
    for r in going:
        a = r.attempt
        # Each claim is taken only once the earlier ones held (a code is used even when the
        # limits then refuse the payment).
        order_open = a.order_id is None or a.order_id in open_orders
        code_unused = order_open and (a.code_key is None or a.code_key in unused_codes)
        if order_open and code_unused and a.code_key is not None:
            unused_codes.discard(a.code_key)
            used_codes.append({"t": a.code_key[0], "c": a.code_key[1], "at": now, "p": r.id})
        taken = (
            order_open
            and code_unused
            and counters.take(limits.Reservation(a.amount, tuple(sorted(r.scopes.items()))))
        )
        reason = planning.claim_decline(
            a, order_open=order_open, code_unused=code_unused, limits_taken=taken
        )
        if reason is not None:
            declined[r.id] = reason
            continue
        if a.order_id is not None:
            open_orders.discard(a.order_id)
            paid_orders.append((a.order_id, r.id))
    counters.write()
    order_claims.mark_paid(connection, paid_orders)
    if used_codes:
        connection.execute(_USE_CODE, used_codes)
    return [_declined(r, declined[r.id]) if r.id in declined else r for r in records]


@dataclass(frozen=True, slots=True)
class _Outcome:
    status: PaymentStatus
    reason: DeclineReason | None
    voucher: str | None
    captured: int
    hold_expires_at_ns: int | None
    updated_at_ns: int


_COMPLETE = (
    payments.update()
    .where(payments.c.id == sa.bindparam("i"))
    .values(
        status=sa.bindparam("s"),
        voucher=sa.bindparam("v"),
        captured=sa.bindparam("c"),
        hold_expires_at_ns=sa.bindparam("h"),
    )
)
_DECLINE = (
    payments.update()
    .where(payments.c.id == sa.bindparam("i"))
    .values(status=PaymentStatus.DECLINED.value, decline_reason=sa.bindparam("r"))
)


def _post(platform: Platform, day: str, going: Sequence[_Record]) -> dict[int, _Outcome]:
    """Post the chains of a batch's recorded payments and complete (or decline) the records in
    one transaction; what each became, by payment id."""
    chains: list[list[Transfer]] = []
    commitments: dict[int, bytes] = {}
    for r in going:
        a = r.attempt
        if a.payer is None:
            raise InvariantError("a payment reaches the ledger only with a payer")
        if a.merchant is None:
            raise InvariantError("a payment reaches the ledger only with a merchant")
        legs = purchase_legs(platform, a.payer.card, a.merchant, a.amount)
        if r.adjustment is not None:
            shares = r.adjustment.shares
            discounts = [(s, discount_legs(platform, a.payer.card, a.merchant, s,
                                           s.discount_minor)) for s in shares]  # fmt: skip
            ids = ledger_ids(r.id, "purchase", 6 + DISCOUNT_SLOTS * len(shares))
            chain = priced_chain(legs, discounts, ids, TransferCode.PURCHASE, r.id)
            chains.append(chain)
            commitments[chain[0].id] = payment_commitment(
                r.salt, r.id, "purchase", a.amount, shares
            )
            continue
        if a.two_phase:
            chain = chain_of(legs, ledger_ids(r.id, "hold"), TransferCode.PURCHASE_HOLD, r.id,
                               flags=TransferFlags.PENDING, timeout=a.hold_seconds)  # fmt: skip
        else:
            chain = chain_of(legs, ledger_ids(r.id, "purchase"), TransferCode.PURCHASE, r.id)
        chains.append(chain)
        commitments[chain[0].id] = payment_commitment(r.salt, r.id, "purchase", a.amount)
    results = post_chains(platform, chains, commitments)
    now = platform.clock.now_ns()
    outcomes: dict[int, _Outcome] = {}
    for r, chain_results in zip(going, results, strict=True):
        a = r.attempt
        first = chain_refusal(chain_results)
        if first is None:
            status = PaymentStatus.AUTHORIZED if a.two_phase else PaymentStatus.COMPLETED
            hold_end = now + a.hold_seconds * NS_PER_SECOND if a.two_phase else None
            captured = 0 if a.two_phase else a.amount
            outcomes[r.id] = _Outcome(status, None, voucher(day, r.id), captured, hold_end, now)
            continue
        if first in (CreateTransferResult.EXCEEDS_CREDITS, CreateTransferResult.EXCEEDS_DEBITS):
            reason = DeclineReason.INSUFFICIENT_FUNDS
        else:
            logger.error("payment %s: the ledger refused the chain: %s", r.id, chain_results)
            reason = DeclineReason.PROCESSING_ERROR
        outcomes[r.id] = _Outcome(PaymentStatus.DECLINED, reason, None, 0, None, now)
    with platform.engine.begin() as connection:
        # Only records still ``created`` are settled here: one a recovery settled meanwhile was
        # settled from the same ledger state, and its limits were given back there.
        mine = set(connection.execute(
            payments.update()
            .where(payments.c.id.in_([r.id for r in going]), payments.c.status == "created")
            .values(updated_at_ns=now)
            .returning(payments.c.id)
        ).scalars())  # fmt: skip
        settled = [r for r in going if r.id in mine]
        done = [(r, outcomes[r.id]) for r in settled if outcomes[r.id].reason is None]
        refused = [(r, outcomes[r.id]) for r in settled if outcomes[r.id].reason is not None]
        if done:
            connection.execute(_COMPLETE, [
                {"i": r.id, "s": o.status.value, "v": o.voucher, "c": o.captured,
                 "h": o.hold_expires_at_ns} for r, o in done
            ])  # fmt: skip
        if refused:
            connection.execute(
                _DECLINE, [{"i": r.id, "r": o.reason and o.reason.value} for r, o in refused]
            )
            limits.release_many(connection, day=day, given_back=[
                (r.attempt.amount, list(r.scopes)) for r, _ in refused
            ])  # fmt: skip
            # The discounts the promotion stage took in the record's transaction, back.
            release_adjustments(
                connection, [r.id for r, _ in refused if r.adjustment is not None], now
            )
            # The orders can be paid again (with another card).
            order_claims.reopen(connection, [
                (r.attempt.order_id, r.id) for r, _ in refused if r.attempt.order_id is not None
            ])  # fmt: skip
        if settled:
            connection.execute(payment_events.insert(), [
                event_row(r.id, 2, o.status, r.attempt.amount, now, o.reason and o.reason.value)
                for r, o in done + refused
            ])  # fmt: skip
    return outcomes
