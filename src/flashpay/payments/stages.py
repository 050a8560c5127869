"""The plug-in place for later stages of a payment: promotion benefits, risk decisions, fares.

Where a stage runs
    In the unit of work of every payment kind — scan-to-pay and payment codes
    (``unit_of_work.run_payments``) and P2P transfers (``transfers``) — for a single request
    (a batch of one) and for a batch alike: once per batch, inside the transaction that records
    the batch. ``review`` runs after the checks that need no write (PIN, card, recipient) and
    before the claims (orders, payment codes, limits); ``adjust`` (a *pricing* stage only) runs
    after the claims, in the same transaction, and before the ledger. ``run_stages`` and
    ``run_adjustments`` call the ``STAGES`` in order; each sees only the plans still going.

What a stage receives
    ``plans``: a frozen ``Plan`` per record still going — its kind, record id, payer, amount,
    and for QR payments the card, the merchant, the payer's phone, the request's
    Idempotency-Key and the time — in request order, and ``connection``: the open transaction
    that records the batch.

What a stage may do
    - decline a plan (``review``): return ``{plan.record_id: reason}``, ``reason`` being the
      value of a refusal code the payment kind knows (today ``processing_error`` for every
      kind; a risk stage will add its own). A declined plan is recorded ``declined`` with that
      reason; it claims nothing, reserves no limit and posts nothing to the ledger;
    - attach an ``Adjustment`` to a QR payment's plan (``adjust``, decision 0019): a discount
      in ``Share``s, one per funder's benefit. The cardholder is then debited the amount less
      the discount, the merchant is credited as for the full amount (less MDR), and each
      share's funder pays its part from its ``promotion_expense`` through the network
      (``legs.discount_legs``): still one linked chain. ``adjust`` runs after the claims, so a
      plan the claims decline never reaches it, and whatever it takes is in the transaction
      that records the payment: it commits with the record or not at all;
    - give back what it took for a plan declined after it (``release``: the ledger refused the
      chain, or recovery declined a record left ``created``) and for a payment refunded in full
      (``refunded``), each in the caller's transaction and exactly once;
    - read, and write its own domain's tables through its owner's functions in ``connection``
      (a promotion budget, a risk score), so its writes commit or roll back with the batch.

What a stage may not do
    - write payments' tables, or another domain's, other than through that domain's owner
      functions; commit or roll back ``connection``; call the ledger (postings are the unit of
      work's, after the claims: a stage that posted would post for a plan a later check
      declines);
    - raise for an expected outcome: a decline is a value. An exception rolls the whole batch
      back (every request of it fails), so it is for bugs and infrastructure only;
    - adjust a P2P transfer or a two-phase payment (a hold): only single-phase QR payments are
      priced (a hold's capture may differ from its authorization; pricing it is not built).

A decline-only stage implements ``review`` alone (``Stage``); a pricing stage implements
``PricingStage`` (``review``, ``adjust``, ``release``, ``refunded``). ``STAGES`` holds the
promotion stage (``flashpay.payments.promotion.PROMOTIONS``): with no campaign running it costs
one indexed SELECT per batch. The shapes (``Plan``, ``Share``, ``Adjustment``, the protocols)
live in ``flashpay.payments.plans`` so the stages can import them. Tests install more with
``installed`` (the seam; nothing is monkey-patched).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa

from flashpay.errors import invariant
from flashpay.payments.plans import Adjustment, Plan, PricingStage, Share, Stage
from flashpay.payments.promotion import PROMOTIONS
from flashpay.platform import Platform

__all__ = ["STAGES", "Adjustment", "Plan", "PricingStage", "Share", "Stage", "installed"]

STAGES: tuple[Stage, ...] = (PROMOTIONS,)


def run_stages(connection: sa.Connection, plans: Sequence[Plan]) -> dict[int, str]:
    """Every stage in order over the plans still going; the declines, by record id."""
    declined: dict[int, str] = {}
    for stage in STAGES:
        going = [p for p in plans if p.record_id not in declined]
        if not going:
            break
        verdicts = stage.review(connection, going)
        ids = {p.record_id for p in going}
        invariant(set(verdicts) <= ids, f"stage {stage.name} declined a plan it was not given")
        declined.update(verdicts)
    return declined


def _pricing() -> list[PricingStage]:
    return [stage for stage in STAGES if isinstance(stage, PricingStage)]


def run_adjustments(
    platform: Platform, connection: sa.Connection, plans: Sequence[Plan]
) -> dict[int, Adjustment]:
    """Every pricing stage in order over the single-phase QR plans (after the claims, in the
    recording transaction); the adjustments, by record id. Two stages adjusting one plan is a
    bug (their shares would need an order of application that nobody has decided)."""
    priced = [p for p in plans if p.kind != "p2p" and not p.two_phase and p.card is not None]
    adjusted: dict[int, Adjustment] = {}
    for stage in _pricing() if priced else []:
        found = stage.adjust(platform, connection, priced)
        invariant(
            set(found) <= {p.record_id for p in priced} and not set(found) & set(adjusted),
            f"stage {stage.name} adjusted a plan it was not given or one already adjusted",
        )
        for record_id, adjustment in found.items():
            plan = next(p for p in priced if p.record_id == record_id)
            invariant(
                0 < adjustment.discount_minor <= plan.amount
                and all(s.discount_minor > 0 for s in adjustment.shares),
                f"stage {stage.name}: a discount outside 1..amount",
            )
        adjusted.update(found)
    return adjusted


def release_adjustments(connection: sa.Connection, record_ids: Sequence[int], now_ns: int) -> None:
    """Give back what the pricing stages took for records declined after ``adjust`` (the
    ledger refused the chain, or recovery declined a record left ``created``)."""
    if record_ids:
        for stage in _pricing():
            stage.release(connection, record_ids, now_ns)


def refunded_in_full(connection: sa.Connection, record_ids: Sequence[int], now_ns: int) -> None:
    """Tell the pricing stages these payments were refunded in full (a promotion gives its
    budget, caps and coupon back)."""
    if record_ids:
        for stage in _pricing():
            stage.refunded(connection, record_ids, now_ns)


@contextmanager
def installed(*stages: Stage) -> Iterator[None]:
    """Run with ``stages`` after the installed ones (for tests and the simulator)."""
    global STAGES
    before = STAGES
    STAGES = before + stages
    try:
        yield
    finally:
        STAGES = before


@contextmanager
def only(*stages: Stage) -> Iterator[None]:
    """Run with exactly ``stages`` (``only()``: none, e.g. the demo's run without promotions)."""
    global STAGES
    before = STAGES
    STAGES = stages
    try:
        yield
    finally:
        STAGES = before
