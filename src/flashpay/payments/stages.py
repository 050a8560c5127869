"""The plug-in place for later stages of a payment: promotion benefits, risk decisions, fares.

Where a stage runs
    In the unit of work of every payment kind — scan-to-pay and payment codes
    (``unit_of_work.run_payments``) and P2P transfers (``transfers``) — for a single request
    (a batch of one) and for a batch alike: once per batch, inside the transaction that records
    the batch, after the checks that need no write (PIN, card, recipient) and before the claims
    (orders, payment codes, limits) and the ledger. ``run_stages`` calls the ``STAGES`` in
    order; each sees only the plans still going after the stages before it.

What a stage receives
    ``plans``: a frozen ``Plan`` per record still going — its kind, record id, payer, amount —
    in request order, and ``connection``: the open transaction that records the batch.

What a stage may do
    - decline a plan: return ``{plan.record_id: reason}``, ``reason`` being the value of a
      refusal code the payment kind knows (today ``processing_error`` for every kind; a risk
      stage will add its own). A declined plan is recorded ``declined`` with that reason; it
      claims nothing, reserves no limit and posts nothing to the ledger;
    - read, and write its own domain's tables through its owner's functions in ``connection``
      (a promotion budget, a risk score), so its writes commit or roll back with the batch.

What a stage may not do
    - write payments' tables, or another domain's, other than through that domain's owner
      functions; commit or roll back ``connection``; call the ledger (postings are the unit of
      work's, after the claims: a stage that posted would post for a plan a later check
      declines);
    - raise for an expected outcome: a decline is a value. An exception rolls the whole batch
      back (every request of it fails), so it is for bugs and infrastructure only.
    - adjust amounts or legs: not yet. A promotion's discount leg needs the plan to carry extra
      legs into ``legs``; that extension belongs with the first stage that needs it.

Today ``STAGES`` is empty. Tests install a stage with ``installed`` (the seam; nothing is
monkey-patched).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa

from flashpay.errors import invariant


@dataclass(frozen=True, slots=True)
class Plan:
    """What a stage sees of one payment going ahead."""

    kind: str  # "mpm_static", "mpm_dynamic", "cpm" or "p2p"
    record_id: int  # the payment's or the transfer's id
    user_id: int | None  # the payer (None: a payment code whose card is unknown cannot go)
    card_id: int | None
    amount: int  # minor units, CNY


class Stage(Protocol):
    """A later stage of the pipeline (see the module docstring for its contract)."""

    name: str

    def review(self, connection: sa.Connection, plans: Sequence[Plan]) -> Mapping[int, str]:
        """The plans this stage declines: refusal code by record id (empty: all go on)."""
        ...


STAGES: tuple[Stage, ...] = ()


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
