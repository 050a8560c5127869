"""The pure planners (``flashpay.payments.planning``), without a database: every decline reason
each planner gives, in check order — an attempt that fails two checks is declined for the
earlier one."""

from __future__ import annotations

from dataclasses import replace

import pytest

from flashpay.cards.service import Card, CardStatus, CardType
from flashpay.clock import NS_PER_SECOND
from flashpay.errors import InvariantError
from flashpay.money import Money
from flashpay.payments import limits, planning
from flashpay.payments.attempts import Attempt, DeclineReason, PaymentKind
from flashpay.payments.payer import Payer
from flashpay.payments.transfer_records import DeclineReason as TransferDecline
from flashpay.wallet.cards import WalletCardStatus
from flashpay.wallet.pin import PinCheck, PinState
from flashpay.wallet.policy import FREE_DAILY_MAX, STATIC_DAILY_MAX

NOW = 1_767_225_600 * NS_PER_SECOND  # 2026-01-01, Beijing 08:00
FREE = 1_000  # the payer's password-free threshold, fen


def _card(
    card_id: int = 7, *, status: CardStatus = CardStatus.ACTIVE, expiry: str = "3012"
) -> Card:
    return Card(
        id=card_id, issuer_id=1, first6="621661", last4="0001", pan_length=16,
        card_type=CardType.DEBIT, expiry=expiry, status=status, holder_name="Li Lei",
        holder_id_fingerprint=b"\0" * 32, phone="13800000000", ledger_account_id=card_id,
        credit_limit=0, statement_day=None,
    )  # fmt: skip


def _payer(
    *, wallet: WalletCardStatus = WalletCardStatus.ACTIVE, card: Card | None = None
) -> Payer:
    return Payer(
        user_id=3, wallet_card_id=5, status=wallet, card=card or _card(),
        pin=PinState(user_id=3, pin_hash="h", pin_failures=0, pin_locked_until_ns=None),
        free_per_payment=FREE, qr_daily_limit=5_000_00, token="tok",
    )  # fmt: skip


def _attempt(amount: int = 500, **changes: object) -> Attempt:
    return replace(Attempt(kind=PaymentKind.MPM_STATIC, amount=amount, payer=_payer()), **changes)


# -- QR payments: before anything is written ------------------------------------------------------
def test_an_attempt_that_passes_every_check_goes_on() -> None:
    assert planning.payment_decline(_attempt(), None, NOW) is None
    assert planning.payment_decline(_attempt(5_000, pin="123456"), PinCheck.OK, NOW) is None


def test_the_front_end_reason_comes_first() -> None:
    attempt = _attempt(
        5_000, reason=DeclineReason.ORDER_EXPIRED, payer=_payer(wallet=WalletCardStatus.FROZEN)
    )
    assert planning.payment_decline(attempt, PinCheck.WRONG, NOW) is DeclineReason.ORDER_EXPIRED


@pytest.mark.parametrize(
    ("verdict", "reason"),
    [
        (PinCheck.NOT_SET, DeclineReason.PIN_NOT_SET),
        (PinCheck.LOCKED, DeclineReason.PIN_LOCKED),
        (PinCheck.WRONG, DeclineReason.WRONG_PIN),
    ],
)
def test_a_pin_verdict_comes_before_the_card(verdict: PinCheck, reason: DeclineReason) -> None:
    attempt = _attempt(payer=_payer(card=_card(status=CardStatus.CLOSED)))
    assert planning.payment_decline(attempt, verdict, NOW) is reason


def test_without_a_pin_a_payment_above_the_threshold_needs_one() -> None:
    assert planning.payment_decline(_attempt(FREE), None, NOW) is None
    frozen = _attempt(FREE + 1, payer=_payer(wallet=WalletCardStatus.FROZEN))
    assert planning.payment_decline(frozen, None, NOW) is DeclineReason.PIN_REQUIRED


def test_a_right_pin_lifts_the_threshold() -> None:
    assert planning.payment_decline(_attempt(FREE + 1), PinCheck.OK, NOW) is None


@pytest.mark.parametrize(
    ("payer", "reason"),
    [
        (_payer(wallet=WalletCardStatus.FROZEN, card=_card(status=CardStatus.CLOSED)),
         DeclineReason.CARD_FROZEN),
        (_payer(card=_card(status=CardStatus.FROZEN, expiry="2001")), DeclineReason.CARD_FROZEN),
        (_payer(card=_card(status=CardStatus.CLOSED, expiry="2001")), DeclineReason.CARD_CLOSED),
        (_payer(card=_card(expiry="2512")), DeclineReason.CARD_EXPIRED),
    ],
)  # fmt: skip
def test_the_card_checks_in_order(payer: Payer, reason: DeclineReason) -> None:
    assert planning.payment_decline(_attempt(payer=payer), None, NOW) is reason


def test_a_card_is_valid_through_its_expiry_month() -> None:
    assert (
        planning.payment_decline(_attempt(payer=_payer(card=_card(expiry="2601"))), None, NOW)
        is None
    )


def test_only_an_attempt_with_a_payer_is_planned() -> None:
    with pytest.raises(InvariantError):
        planning.payment_decline(_attempt(payer=None), None, NOW)
    with pytest.raises(InvariantError):
        planning.payment_scopes(_attempt(payer=None), pin_ok=True)


# -- QR payments: the limits they reserve ---------------------------------------------------------
def test_the_scopes_of_a_payment() -> None:
    dynamic = _attempt(kind=PaymentKind.MPM_DYNAMIC)
    assert planning.payment_scopes(dynamic, pin_ok=True) == {
        "qr:user:3": 5_000_00, "card:7": limits.DAILY_PER_CARD_MAX,
    }  # fmt: skip
    assert planning.payment_scopes(_attempt(), pin_ok=False) == {
        "qr:user:3": 5_000_00, "card:7": limits.DAILY_PER_CARD_MAX,
        "free:user:3": FREE_DAILY_MAX, "static:user:3": STATIC_DAILY_MAX,
    }  # fmt: skip


# -- QR payments: at the claims ------------------------------------------------------------------
def test_the_claims_in_order() -> None:
    both = _attempt(order_id=11, code_key=("tok", 1))
    decide = planning.claim_decline
    assert decide(both, order_open=True, code_unused=True, limits_taken=True) is None
    assert (
        decide(both, order_open=False, code_unused=False, limits_taken=False)
        is DeclineReason.ORDER_ALREADY_PAID
    )
    assert (
        decide(both, order_open=True, code_unused=False, limits_taken=False)
        is DeclineReason.CODE_ALREADY_USED
    )
    assert (
        decide(both, order_open=True, code_unused=True, limits_taken=False)
        is DeclineReason.LIMIT_EXCEEDED
    )


def test_a_claim_a_payment_does_not_make_cannot_decline_it() -> None:
    static = _attempt()
    assert (
        planning.claim_decline(static, order_open=False, code_unused=False, limits_taken=True)
        is None
    )


# -- P2P transfers ---------------------------------------------------------------------------------
RECEIVER = _card(8)


def test_a_transfer_that_passes_every_check_goes_on() -> None:
    decision = planning.transfer_decline(
        _payer(), PinCheck.OK, RECEIVER, Money.of(limits.PER_TRANSFER_MAX), NOW
    )
    assert decision is None


@pytest.mark.parametrize(
    ("verdict", "reason"),
    [
        (PinCheck.NOT_SET, TransferDecline.PIN_NOT_SET),
        (PinCheck.LOCKED, TransferDecline.PIN_LOCKED),
        (PinCheck.WRONG, TransferDecline.WRONG_PIN),
    ],
)
def test_a_transfer_needs_its_pin_first(verdict: PinCheck, reason: TransferDecline) -> None:
    payer = _payer(wallet=WalletCardStatus.FROZEN)
    over = Money.of(limits.PER_TRANSFER_MAX + 1)
    assert planning.transfer_decline(payer, verdict, None, over, NOW) is reason


@pytest.mark.parametrize(
    ("payer", "receiver", "amount", "reason"),
    [
        (_payer(wallet=WalletCardStatus.FROZEN), None, 1, TransferDecline.CARD_FROZEN),
        (_payer(card=_card(status=CardStatus.FROZEN)), None, 1, TransferDecline.CARD_FROZEN),
        (_payer(card=_card(status=CardStatus.CLOSED)), None, 1, TransferDecline.CARD_CLOSED),
        (_payer(card=_card(expiry="2512")), None, 1, TransferDecline.CARD_EXPIRED),
        (_payer(), None, limits.PER_TRANSFER_MAX + 1, TransferDecline.RECIPIENT_NOT_FOUND),
        (_payer(), _card(8, status=CardStatus.FROZEN), limits.PER_TRANSFER_MAX + 1,
         TransferDecline.RECIPIENT_UNAVAILABLE),
        (_payer(), _card(8, status=CardStatus.CLOSED), 1, TransferDecline.RECIPIENT_UNAVAILABLE),
        (_payer(), _card(7), limits.PER_TRANSFER_MAX + 1, TransferDecline.SAME_CARD),
        (_payer(), RECEIVER, limits.PER_TRANSFER_MAX + 1, TransferDecline.LIMIT_EXCEEDED),
    ],
)  # fmt: skip
def test_the_transfer_checks_in_order(
    payer: Payer, receiver: Card | None, amount: int, reason: TransferDecline
) -> None:
    decision = planning.transfer_decline(payer, PinCheck.OK, receiver, Money.of(amount), NOW)
    assert decision is reason
