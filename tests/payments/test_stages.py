"""The stage hook (``flashpay.payments.stages``): one plug-in place for every payment kind.

A tiny test-only stage declines the plan of one marked amount and lets the others through. It
must run for scan-to-pay and P2P, for a single request and a batch, inside the recording
transaction; the declined plan is recorded declined with the stage's reason and posts nothing
(no ledger transfer, no balance moved, no limit used), while the others complete as usual.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from flashpay.merchants.service import Scene
from flashpay.money import Money
from flashpay.payments import stages
from flashpay.payments.attempts import DeclineReason, Payment, PaymentStatus
from flashpay.payments.legs import first_posting_id, ledger_ids
from flashpay.payments.promotion import PROMOTIONS
from flashpay.payments.stages import Plan
from flashpay.payments.submit import submit_payments
from flashpay.payments.transfer_records import DeclineReason as TransferDeclineReason
from flashpay.payments.transfer_records import P2PRequest, P2PTransfer, TransferStatus
from flashpay.payments.transfers import create_transfers
from flashpay.platform import Platform

from .test_qr_batches import Town
from .test_recovery import PIN, available, used

MARKED = 1_111  # the amount the test stage declines


@dataclass
class DeclineMarked:
    """Declines the plan of amount ``MARKED``; remembers each batch it saw."""

    name: str = "decline-marked"
    seen: list[list[Plan]] = field(default_factory=list)

    def review(self, connection: sa.Connection, plans: Sequence[Plan]) -> Mapping[int, str]:
        assert not connection.closed  # the recording transaction is open
        self.seen.append(list(plans))
        return {p.record_id: "processing_error" for p in plans if p.amount == MARKED}


def _town(platform: Platform) -> Town:
    town = Town(platform)
    town.add_member("li", "BOC", 100_000)
    town.add_member("wang", "ICBC", 100_000)
    town.add_shop("tea", Scene.SUPERMARKET, "5411")
    return town


def _posted(platform: Platform, ids: Sequence[int]) -> int:
    return len(platform.ledger.lookup_transfers(list(ids)))


def _pay(town: Town, amounts: Sequence[int]) -> list[Payment]:
    requests = [town.scan("li", town.static["tea"], amount) for amount in amounts]
    answers = submit_payments(platform=town.platform, requests=requests)
    assert all(isinstance(a, Payment) for a in answers)
    return [a for a in answers if isinstance(a, Payment)]


def _send(town: Town, amounts: Sequence[int]) -> list[P2PTransfer]:
    li, wang = town.members["li"], town.members["wang"]
    requests = [
        (li.user_id, P2PRequest(li.wallet_card_id, Money.of(amount), PIN, to_phone=wang.phone))
        for amount in amounts
    ]
    answers = create_transfers(platform=town.platform, requests=requests)
    assert all(isinstance(a, P2PTransfer) for a in answers)
    return [a for a in answers if isinstance(a, P2PTransfer)]


def test_only_the_promotion_stage_is_installed_by_default() -> None:
    assert stages.STAGES == (PROMOTIONS,)


def test_a_stage_declines_one_qr_payment_single_and_in_a_batch(platform: Platform) -> None:
    town = _town(platform)
    li = town.members["li"]
    stage = DeclineMarked()
    with stages.installed(stage):
        [single] = _pay(town, [MARKED])
        batch = _pay(town, [200, MARKED, 300])
    assert stages.STAGES == (PROMOTIONS,)
    declined = [single, batch[1]]
    for p in declined:
        assert (p.status, p.decline_reason) == (
            PaymentStatus.DECLINED,
            DeclineReason.PROCESSING_ERROR,
        )
        assert p.voucher is None
        assert _posted(platform, ledger_ids(p.id, "purchase")) == 0
    assert [p.status for p in (batch[0], batch[2])] == [PaymentStatus.COMPLETED] * 2
    # Only the two payments that went through moved money or used a limit.
    assert available(platform, li.card_id) == 100_000 - 500
    assert used(platform, f"qr:user:{li.user_id}") == 500
    # The hook ran once per batch — the single request is a batch of one — with every plan.
    assert [[(p.kind, p.amount) for p in plans] for plans in stage.seen] == [
        [("mpm_static", MARKED)],
        [("mpm_static", 200), ("mpm_static", MARKED), ("mpm_static", 300)],
    ]


def test_a_stage_declines_one_transfer_single_and_in_a_batch(platform: Platform) -> None:
    town = _town(platform)
    li, wang = town.members["li"], town.members["wang"]
    stage = DeclineMarked()
    with stages.installed(stage):
        [single] = _send(town, [MARKED])
        batch = _send(town, [200, MARKED, 300])
    for t in (single, batch[1]):
        assert (t.status, t.decline_reason) == (
            TransferStatus.DECLINED,
            TransferDeclineReason.PROCESSING_ERROR,
        )
        assert t.voucher is None
        assert _posted(platform, [first_posting_id(t.id)]) == 0
    assert [t.status for t in (batch[0], batch[2])] == [TransferStatus.COMPLETED] * 2
    assert available(platform, li.card_id) == 100_000 - 500
    assert available(platform, wang.card_id) == 100_000 + 500
    assert used(platform, f"user:{li.user_id}") == 500
    assert [[(p.kind, p.amount) for p in plans] for plans in stage.seen] == [
        [("p2p", MARKED)],
        [("p2p", 200), ("p2p", MARKED), ("p2p", 300)],
    ]
