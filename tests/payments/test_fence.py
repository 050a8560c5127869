"""Recovery never races a request still in flight (issue 12): it fences the record's ledger ids.

A request is recorded ``created`` and is on its way to the ledger — slow, not dead — when
recovery finds it past the age cut-off. Before the fence, recovery looked the chain up, found
nothing, declined the record and gave its limits back; then the slow request posted: money moved
for a declined payment. Now recovery takes the chain's first id first; the late post is refused,
and the record, the answer and the books agree. On SQLite and PostgreSQL (books checked after).
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import pytest

from flashpay.clock import FakeClock
from flashpay.ledger import CreateTransferResult, Transfer
from flashpay.money import Money
from flashpay.payments.attempts import Payment, PaymentStatus
from flashpay.payments.fence import fence
from flashpay.payments.legs import first_posting_id
from flashpay.payments.queries import get_payment, list_payments
from flashpay.payments.recovery import recover_payments
from flashpay.payments.submit import pay_scanned_code
from flashpay.payments.transfer_queries import get_transfer, recover_transfers
from flashpay.payments.transfer_records import P2PRequest, P2PTransfer, TransferStatus
from flashpay.payments.transfers import create_transfer
from flashpay.platform import Platform

from .crashing import CrashError, CrashingLedger
from .test_payment_recovery import _shop_and_order
from .test_recovery import PIN, RECOVERY_AGE_SECONDS, available, member, used

WAIT_SECONDS_MAX = 30


class SlowLedger:
    """The real ledger, except that the first post waits until the test lets it go on."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.waiting = threading.Event()
        self.go_on = threading.Event()
        self.results: list[CreateTransferResult] = []

    def create_transfers(self, transfers: list[Transfer], **kwargs: Any) -> Any:
        if not self.waiting.is_set():
            self.waiting.set()
            assert self.go_on.wait(WAIT_SECONDS_MAX)
            self.results = self._real.create_transfers(transfers, **kwargs)
            return self.results
        return self._real.create_transfers(transfers, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _in_flight(platform: Platform, work: Any) -> tuple[SlowLedger, threading.Thread, list[Any]]:
    slow = SlowLedger(platform.ledger)
    answers: list[Any] = []
    thread = threading.Thread(
        target=lambda: answers.append(work(dataclasses.replace(platform, ledger=slow)))
    )
    thread.start()
    assert slow.waiting.wait(WAIT_SECONDS_MAX)
    return slow, thread, answers


def test_recovery_beside_a_slow_payment_declines_it_and_nothing_moves(
    platform: Platform, clock: FakeClock
) -> None:
    payer = member(platform, 1, bank="BOC", prefix="621661", balance=10_000)
    payload = _shop_and_order(platform, 2_500, "SLOW-1")

    def pay(on: Platform) -> Payment:
        return pay_scanned_code(platform=on, user_id=payer.user_id, payload=payload,
                                   wallet_card_id=payer.wallet_card_id, pin=PIN)  # fmt: skip

    slow, thread, answers = _in_flight(platform, pay)
    clock.advance(RECOVERY_AGE_SECONDS + 1)
    assert recover_payments(platform=platform) == 1  # it looks dead: settle it
    slow.go_on.set()
    thread.join(WAIT_SECONDS_MAX)
    [answer] = answers
    stored = get_payment(platform=platform, payment_id=answer.id, user_id=payer.user_id)
    assert stored is not None
    assert stored.status is PaymentStatus.DECLINED
    assert answer.status is PaymentStatus.DECLINED  # the late request says what happened
    assert CreateTransferResult.OK not in slow.results  # its chain could not post any more
    assert available(platform, payer.card_id) == 10_000  # no money moved
    assert used(platform, f"qr:user:{payer.user_id}") == 0  # given back once


def test_recovery_beside_a_slow_transfer_declines_it_and_nothing_moves(
    platform: Platform, clock: FakeClock
) -> None:
    sender = member(platform, 1, bank="BOC", prefix="621661", balance=10_000)
    receiver = member(platform, 2, bank="ICBC", prefix="622202", balance=0)
    request = P2PRequest(sender.wallet_card_id, Money.of(3_000), PIN, to_phone=receiver.phone)

    def send(on: Platform) -> P2PTransfer:
        return create_transfer(platform=on, user_id=sender.user_id, request=request)

    slow, thread, answers = _in_flight(platform, send)
    clock.advance(RECOVERY_AGE_SECONDS + 1)
    assert recover_transfers(platform=platform) == 1
    slow.go_on.set()
    thread.join(WAIT_SECONDS_MAX)
    [answer] = answers
    stored = get_transfer(platform=platform, user_id=sender.user_id, transfer_id=answer.id)
    assert stored is not None
    assert stored.status is TransferStatus.DECLINED
    assert answer.status is TransferStatus.DECLINED
    assert available(platform, sender.card_id) == 10_000
    assert available(platform, receiver.card_id) == 0


def test_a_fence_finds_a_chain_that_posted_and_takes_an_id_that_did_not(
    platform: Platform,
) -> None:
    sender = member(platform, 1, bank="BOC", prefix="621661", balance=10_000)
    receiver = member(platform, 2, bank="ICBC", prefix="622202", balance=0)
    request = P2PRequest(sender.wallet_card_id, Money.of(1_000), PIN, to_phone=receiver.phone)
    done = create_transfer(platform=platform, user_id=sender.user_id, request=request)
    never = 4242  # a record whose chain never posted
    chains = [(done.id, [first_posting_id(done.id)]), (never, [first_posting_id(never)])]
    assert fence(platform, chains) == {done.id}
    assert fence(platform, chains) == {done.id}  # fencing again changes nothing
    assert available(platform, sender.card_id) == 9_000  # a fence moves no money


@pytest.mark.parametrize("age_seconds", [0, RECOVERY_AGE_SECONDS + 1])
def test_recovery_settles_a_dead_payment_at_any_age(
    platform: Platform, clock: FakeClock, age_seconds: int
) -> None:
    """With the fence, ``older_than_seconds=0`` is safe (``pay recover --older-than 0``)."""
    payer = member(platform, 1, bank="BOC", prefix="621661", balance=10_000)
    payload = _shop_and_order(platform, 2_500, "DEAD-1")
    slow, thread, answers = _in_flight(
        platform,
        lambda on: pay_scanned_code(platform=on, user_id=payer.user_id, payload=payload,
                                       wallet_card_id=payer.wallet_card_id, pin=PIN),
    )  # fmt: skip
    clock.advance(age_seconds + 1)
    assert recover_payments(platform=platform, older_than_seconds=age_seconds) == 1
    slow.go_on.set()
    thread.join(WAIT_SECONDS_MAX)
    assert answers[0].status is PaymentStatus.DECLINED
    assert available(platform, payer.card_id) == 10_000


def test_a_small_payment_whose_first_leg_is_zero_is_found_posted(
    platform: Platform, clock: FakeClock
) -> None:
    """¥1.11 at a supermarket: the interchange leg rounds to 0 fen and is left out, so the chain
    does not use its first id. The fence covers every id the chain may use (a fence on the
    first id alone took it, and declined a payment whose money had moved)."""
    payer = member(platform, 1, bank="BOC", prefix="621661", balance=10_000)
    payload = _shop_and_order(platform, 111, "SMALL-1")
    crashing = dataclasses.replace(
        platform, ledger=CrashingLedger(platform.ledger, after_post=True)
    )
    with pytest.raises(CrashError):
        pay_scanned_code(platform=crashing, user_id=payer.user_id, payload=payload,
                            wallet_card_id=payer.wallet_card_id, pin=PIN)  # fmt: skip
    clock.advance(RECOVERY_AGE_SECONDS + 1)
    assert recover_payments(platform=platform) == 1
    [paid] = list_payments(platform=platform, user_id=payer.user_id)
    assert paid.status is PaymentStatus.COMPLETED
    assert available(platform, payer.card_id) == 10_000 - 111
