"""Crash safety of P2P transfers at the service level, on SQLite and PostgreSQL.

A process can die at two points that matter (``flashpay.payments.p2p``): after the ``created``
record (with its limit reservation) and before the ledger post, or after the ledger post and
before the record is completed. The ledger is wrapped by a ``CrashingLedger`` that raises at the
chosen point, the way a killed process stops; ``recover_transfers`` then settles the record from
what the ledger holds. The books balance afterwards in every case.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa

from flashpay.cards.numbers import generate_card_number
from flashpay.cards.service import card_balance, get_card, issue_card
from flashpay.clock import FakeClock
from flashpay.institutions.service import get_institution
from flashpay.money import Money
from flashpay.notify import RecordingNotifier
from flashpay.payments import limits
from flashpay.payments.legs import first_posting_id
from flashpay.payments.models import p2p_transfers
from flashpay.payments.transfer_queries import get_transfer, recover_transfers
from flashpay.payments.transfer_records import (
    DeclineReason,
    P2PRequest,
    P2PTransfer,
    TransferStatus,
)
from flashpay.payments.transfers import create_transfer
from flashpay.platform import Platform
from flashpay.wallet.binding import confirm_binding, start_binding
from flashpay.wallet.pin import set_pin
from flashpay.wallet.registration import register

from .crashing import CrashError, CrashingLedger

START_NS = 1_795_000_000 * 1_000_000_000  # 2026-11-18, Beijing afternoon
PASSWORD = "correct horse battery"
PIN = "135790"
RECOVERY_AGE_SECONDS = 60


@dataclasses.dataclass
class Member:
    user_id: int
    wallet_card_id: int
    card_id: int
    phone: str


def member(platform: Platform, n: int, *, bank: str, prefix: str, balance: int) -> Member:
    """A wallet user with one bound debit card of ``bank`` holding ``balance`` fen."""
    phone, name, id_number = f"1390000{n:04d}", f"Member {n}", f"11010119900101{n:03d}X"
    user = register(
        platform=platform, phone=phone, name=name, id_number=id_number, password=PASSWORD
    )
    set_pin(platform=platform, user_id=user.id, pin=PIN, password=PASSWORD)
    issuer = get_institution(platform=platform, code=bank)
    assert issuer is not None
    number = generate_card_number(prefix)
    issued = issue_card(
        platform=platform,
        issuer=issuer,
        card=number,
        expiry="3012",
        holder_name=name,
        holder_id_number=id_number,
        phone=phone,
        opening_balance=balance,
    )
    binding = start_binding(platform=platform, user_id=user.id, card_number=number, expiry="12/30")
    notifier = platform.notifier
    assert isinstance(notifier, RecordingNotifier)
    otp = notifier.last_code("card_binding", str(binding.id))
    bound = confirm_binding(platform=platform, user_id=user.id, binding_id=binding.id, otp=otp)
    return Member(user.id, bound.id, issued.card.id, phone)


def send(platform: Platform, payer: Member, payee: Member, amount: int) -> P2PTransfer:
    request = P2PRequest(
        from_wallet_card_id=payer.wallet_card_id,
        amount=Money.of(amount),
        pin=PIN,
        to_phone=payee.phone,
    )
    return create_transfer(platform=platform, user_id=payer.user_id, request=request)


def available(platform: Platform, card_id: int) -> int:
    card = get_card(platform=platform, card_id=card_id)
    assert card is not None
    return card_balance(platform=platform, card=card).available


def used(platform: Platform, scope: str) -> int:
    return limits.used(platform=platform, scope=scope, day=limits.beijing_day(START_NS))


def crash_transfer(
    platform: Platform, payer: Member, payee: Member, amount: int, *, after_post: bool
) -> int:
    """Start a transfer on a platform whose ledger dies; return the transfer's id."""
    crashing = dataclasses.replace(
        platform, ledger=CrashingLedger(platform.ledger, after_post=after_post)
    )
    with pytest.raises(CrashError):
        send(crashing, payer, payee, amount)
    [left] = _created(platform, payer.user_id)
    return left


def _created(platform: Platform, user_id: int) -> list[int]:
    with platform.engine.connect() as connection:
        return [
            int(i)
            for i in connection.execute(
                sa.select(p2p_transfers.c.id).where(
                    p2p_transfers.c.user_id == user_id, p2p_transfers.c.status == "created"
                )
            ).scalars()
        ]


@pytest.mark.parametrize("cross_bank", [False, True], ids=["same_bank", "cross_bank"])
def test_crash_before_the_ledger_post_is_declined_and_the_limits_given_back(
    platform: Platform, clock: FakeClock, cross_bank: bool
) -> None:
    alice = member(platform, 1, bank="BOC", prefix="621661", balance=100_000)
    bob = member(
        platform,
        2,
        bank="ICBC" if cross_bank else "BOC",
        prefix="622202" if cross_bank else "621785",
        balance=0,
    )
    transfer_id = crash_transfer(platform, alice, bob, 12_345, after_post=False)
    # The record and its reservation committed before the post; nothing moved.
    assert used(platform, f"user:{alice.user_id}") == 12_345
    assert used(platform, f"card:{alice.card_id}") == 12_345
    assert platform.ledger.lookup_transfers([first_posting_id(transfer_id)]) == []
    clock.advance(RECOVERY_AGE_SECONDS - 1)
    assert recover_transfers(platform=platform) == 0  # too young: its process may still run
    clock.advance(2)
    assert recover_transfers(platform=platform) == 1
    settled = get_transfer(platform=platform, user_id=alice.user_id, transfer_id=transfer_id)
    assert settled is not None
    assert (settled.status, settled.decline_reason, settled.voucher) == (
        TransferStatus.DECLINED,
        DeclineReason.PROCESSING_ERROR,
        None,
    )
    assert settled.completed_at_ns == clock.now_ns()
    assert used(platform, f"user:{alice.user_id}") == 0
    assert used(platform, f"card:{alice.card_id}") == 0
    assert (available(platform, alice.card_id), available(platform, bob.card_id)) == (100_000, 0)
    assert recover_transfers(platform=platform) == 0  # settled once
    # Nothing was half-spent: the whole balance can still be sent.
    again = send(platform, alice, bob, 100_000)
    assert again.status is TransferStatus.COMPLETED


@pytest.mark.parametrize("cross_bank", [False, True], ids=["same_bank", "cross_bank"])
def test_crash_after_the_ledger_post_is_completed_with_its_voucher(
    platform: Platform, clock: FakeClock, cross_bank: bool
) -> None:
    alice = member(platform, 1, bank="BOC", prefix="621661", balance=100_000)
    bob = member(
        platform,
        2,
        bank="CMB" if cross_bank else "BOC",
        prefix="622588" if cross_bank else "621661",
        balance=500,
    )
    transfer_id = crash_transfer(platform, alice, bob, 40_000, after_post=True)
    # The money moved; the record still says created.
    assert (available(platform, alice.card_id), available(platform, bob.card_id)) == (
        60_000,
        40_500,
    )
    left = get_transfer(platform=platform, user_id=alice.user_id, transfer_id=transfer_id)
    assert left is not None
    assert left.status is TransferStatus.CREATED
    clock.advance(RECOVERY_AGE_SECONDS + 1)
    assert recover_transfers(platform=platform) == 1
    settled = get_transfer(platform=platform, user_id=alice.user_id, transfer_id=transfer_id)
    assert settled is not None
    assert (settled.status, settled.decline_reason) == (TransferStatus.COMPLETED, None)
    day = limits.beijing_day(START_NS).replace("-", "")
    assert settled.voucher == f"{day}{transfer_id:019d}"
    # Completed transfers keep their reservation: it was spent.
    assert used(platform, f"card:{alice.card_id}") == 40_000
    assert (available(platform, alice.card_id), available(platform, bob.card_id)) == (
        60_000,
        40_500,
    )
    assert recover_transfers(platform=platform) == 0


def test_two_recoveries_at_once_give_a_reservation_back_once(
    platform: Platform, clock: FakeClock
) -> None:
    """Recovery runs "from any process": a second run that settles the same record while the
    first is between its read and its write must not release the reservation a second time
    (which would let the user pass the daily limit by the amount)."""
    alice = member(platform, 1, bank="BOC", prefix="621661", balance=100_000)
    bob = member(platform, 2, bank="BOC", prefix="621785", balance=0)
    crash_transfer(platform, alice, bob, 7_000, after_post=False)
    clock.advance(RECOVERY_AGE_SECONDS + 1)

    class OtherProcessFirst:
        """The first recovery's ledger look-up: meanwhile another process recovers it all."""

        def __init__(self, real: Any) -> None:
            self._real = real
            self.nested = 0

        def lookup_transfers(self, ids: Sequence[int]) -> Any:
            if self.nested == 0:
                self.nested += 1
                assert recover_transfers(platform=platform) == 1
            return self._real.lookup_transfers(ids)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._real, name)

    racing = dataclasses.replace(platform, ledger=OtherProcessFirst(platform.ledger))
    recover_transfers(platform=racing)
    assert used(platform, f"user:{alice.user_id}") == 0
    assert used(platform, f"card:{alice.card_id}") == 0
