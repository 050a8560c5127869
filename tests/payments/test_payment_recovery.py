"""Crash safety of QR payments at the service level, on SQLite and PostgreSQL: a process that
dies after the ``created`` record (with its order claim and limits) and before, or after, the
ledger post leaves a record that ``recover_payments`` settles from what the ledger holds."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa

from flashpay.clock import FakeClock
from flashpay.institutions.service import get_institution
from flashpay.merchants.service import Scene, create_order, onboard_merchant, terminal_by_code
from flashpay.money import Money
from flashpay.payments.attempts import DeclineReason, Payment, PaymentStatus, RefundRequest
from flashpay.payments.models import payments
from flashpay.payments.queries import get_payment, history
from flashpay.payments.recovery import recover_payments
from flashpay.payments.refunds import refund, refund_many
from flashpay.payments.submit import pay_scanned_code
from flashpay.platform import Platform

from .crashing import CrashError, CrashingLedger
from .test_recovery import (
    PIN,
    RECOVERY_AGE_SECONDS,
    available,
    member,
    used,
)


def _shop_and_order(platform: Platform, amount: int, bill: str) -> str:
    ums = get_institution(platform=platform, code="UMS")
    assert ums is not None
    shop = onboard_merchant(platform=platform, acquirer=ums, legal_name="Wumart Co",
                            display_name="Wumart", city="Beijing", mcc="5411",
                            scene=Scene.SUPERMARKET)  # fmt: skip
    terminal = terminal_by_code(platform=platform, merchant_id=shop.id, code="T0001")
    assert terminal is not None
    _, payload = create_order(platform=platform, merchant=shop, terminal=terminal,
                              amount=amount, bill_number=bill)  # fmt: skip
    return payload


def _left_created(platform: Platform) -> int:
    with platform.engine.connect() as connection:
        [payment_id] = connection.execute(
            sa.select(payments.c.id).where(payments.c.status == "created")
        ).scalars()
    return int(payment_id)


@pytest.mark.parametrize("after_post", [False, True], ids=["before_post", "after_post"])
def test_a_crashed_payment_is_settled_from_the_ledger(
    platform: Platform, clock: FakeClock, after_post: bool
) -> None:
    payer = member(platform, 1, bank="BOC", prefix="621661", balance=10_000)
    payload = _shop_and_order(platform, 2_500, "CRASH-1")
    crashing = dataclasses.replace(
        platform, ledger=CrashingLedger(platform.ledger, after_post=after_post)
    )
    with pytest.raises(CrashError):
        pay_scanned_code(platform=crashing, user_id=payer.user_id, payload=payload,
                            wallet_card_id=payer.wallet_card_id, pin=PIN)  # fmt: skip
    payment_id = _left_created(platform)
    assert used(platform, f"qr:user:{payer.user_id}") == 2_500  # reserved with the record
    assert recover_payments(platform=platform) == 0  # too young: it may still be running
    clock.advance(RECOVERY_AGE_SECONDS + 1)
    assert recover_payments(platform=platform) == 1
    settled = get_payment(platform=platform, payment_id=payment_id, user_id=payer.user_id)
    assert settled is not None
    if after_post:
        assert settled.status is PaymentStatus.COMPLETED
        assert settled.voucher is not None
        assert available(platform, payer.card_id) == 7_500
        assert used(platform, f"qr:user:{payer.user_id}") == 2_500
    else:
        assert settled.status is PaymentStatus.DECLINED
        assert settled.decline_reason is DeclineReason.PROCESSING_ERROR
        assert available(platform, payer.card_id) == 10_000
        assert used(platform, f"qr:user:{payer.user_id}") == 0  # given back
        # The order is open again: the customer can pay it now.
        again = pay_scanned_code(platform=platform, user_id=payer.user_id, payload=payload,
                                    wallet_card_id=payer.wallet_card_id, pin=PIN)  # fmt: skip
        assert again.status is PaymentStatus.COMPLETED
    assert recover_payments(platform=platform) == 0  # nothing left; running again is safe


@pytest.mark.parametrize("after_post", [False, True], ids=["before_post", "after_post"])
def test_a_crashed_refund_is_settled_from_the_ledger(
    platform: Platform, clock: FakeClock, after_post: bool
) -> None:
    payer = member(platform, 1, bank="BOC", prefix="621661", balance=10_000)
    payload = _shop_and_order(platform, 2_500, "REFUND-1")
    paid = pay_scanned_code(platform=platform, user_id=payer.user_id, payload=payload,
                               wallet_card_id=payer.wallet_card_id, pin=PIN)  # fmt: skip
    assert paid.merchant_id is not None
    crashing = dataclasses.replace(
        platform, ledger=CrashingLedger(platform.ledger, after_post=after_post)
    )
    with pytest.raises(CrashError):
        refund(platform=crashing, merchant_id=paid.merchant_id, payment_id=paid.id,
                  amount=Money.of(1_000))  # fmt: skip
    taken = get_payment(platform=platform, payment_id=paid.id, user_id=payer.user_id)
    assert taken is not None
    assert taken.refunded == 1_000  # taken with the refund's record
    assert recover_payments(platform=platform) == 0  # too young: it may still be running
    clock.advance(RECOVERY_AGE_SECONDS + 1)
    assert recover_payments(platform=platform) == 1
    settled = get_payment(platform=platform, payment_id=paid.id, user_id=payer.user_id)
    assert settled is not None
    events = history(platform=platform, payment_id=paid.id)
    if after_post:  # the money went back: the record says so
        assert (settled.status, settled.refunded) == (PaymentStatus.PARTIALLY_REFUNDED, 1_000)
        assert available(platform, payer.card_id) == 10_000 - 2_500 + 1_000
        assert events[-1].detail == "refund"
    else:  # nothing moved: the amount is free to refund again
        assert (settled.status, settled.refunded) == (PaymentStatus.COMPLETED, 0)
        assert available(platform, payer.card_id) == 10_000 - 2_500
        again = refund(platform=platform, merchant_id=paid.merchant_id, payment_id=paid.id,
                          amount=Money.of(2_500))  # fmt: skip
        assert (again.status, again.refunded) == (PaymentStatus.REFUNDED, 2_500)
        assert available(platform, payer.card_id) == 10_000
    assert recover_payments(platform=platform) == 0


def test_two_refunds_of_one_payment_in_one_batch_are_numbered_apart(platform: Platform) -> None:
    payer = member(platform, 1, bank="BOC", prefix="621661", balance=10_000)
    payload = _shop_and_order(platform, 3_000, "REFUND-2")
    paid = pay_scanned_code(platform=platform, user_id=payer.user_id, payload=payload,
                               wallet_card_id=payer.wallet_card_id, pin=PIN)  # fmt: skip
    assert paid.merchant_id is not None
    request = RefundRequest(paid.merchant_id, paid.id, Money.of(1_000))
    answers = refund_many(platform=platform, requests=[request, request, request, request])
    assert [a.refunded if isinstance(a, Payment) else a.code for a in answers] == [
        1_000, 2_000, 3_000, "refund_exceeds_payment"
    ]  # fmt: skip
    assert available(platform, payer.card_id) == 10_000  # each moved its own money back
    refunds = [e for e in history(platform=platform, payment_id=paid.id) if e.detail]
    assert [(e.status, e.amount) for e in refunds] == [(PaymentStatus.REFUNDED, 1_000)] * 3
