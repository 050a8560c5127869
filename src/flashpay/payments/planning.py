"""The pure planners: a frozen attempt and the facts read for it in, a decline reason (or the
limit scopes it reserves) out — no I/O, no clock, no database, as ``ledger/engine.py`` decides
for transfers.

The units of work (``unit_of_work.run_payments`` for QR payments, ``transfers`` for P2P) read
the facts a batch needs (payers, recipients, PIN verdicts, the time), ask these functions what
each attempt becomes, and apply the answers. Each planner checks in the order of its kind's
``DeclineReason`` and returns the first reason that applies, so the order of the checks is
written once, here, and tested without a database (``tests/payments/test_planning.py``).

The claims that need locked rows (orders, payment codes, limit counters) are decided by the
unit of work against what it read ``FOR UPDATE``; ``claim_decline`` is their order, pure too.
"""

from __future__ import annotations

from flashpay.cards.service import Card, CardStatus, is_expired
from flashpay.errors import InvariantError
from flashpay.money import Money
from flashpay.payments import limits
from flashpay.payments.attempts import Attempt, DeclineReason, PaymentKind
from flashpay.payments.payer import Payer
from flashpay.payments.transfer_records import DeclineReason as TransferDecline
from flashpay.wallet.cards import WalletCardStatus
from flashpay.wallet.pin import PinCheck
from flashpay.wallet.policy import FREE_DAILY_MAX, STATIC_DAILY_MAX


def _card_decline(payer: Payer, now_ns: int) -> str | None:
    """The issuer's checks shared by every kind: the value of ``card_frozen``,
    ``card_closed`` or ``card_expired`` (both kinds spell them alike), else ``None``."""
    card = payer.card
    if payer.status is WalletCardStatus.FROZEN or card.status is CardStatus.FROZEN:
        return "card_frozen"
    if card.status is CardStatus.CLOSED:
        return "card_closed"
    if is_expired(card.expiry, now_ns):
        return "card_expired"
    return None


def payment_decline(a: Attempt, verdict: PinCheck | None, now_ns: int) -> DeclineReason | None:
    """Why a QR attempt with a payer is declined before anything is written, in
    ``DeclineReason`` order: the front end's reason (the code, the merchant, the order) first;
    then the PIN when given (``verdict``; ``None``: no PIN), else the password-free rule
    (``pin_required`` above the user's threshold); then the card."""
    payer = a.payer
    if payer is None:
        raise InvariantError("only an attempt with a payer is planned")
    if a.reason is not None:
        return a.reason
    if verdict is not None:
        if verdict is not PinCheck.OK:
            return DeclineReason(verdict.value)
    elif a.amount > payer.free_per_payment:
        return DeclineReason.PIN_REQUIRED
    card = _card_decline(payer, now_ns)
    return DeclineReason(card) if card is not None else None


def payment_scopes(a: Attempt, pin_ok: bool) -> dict[str, int]:
    """The daily limit counters a QR payment reserves, with their caps: the user's QR limit and
    the card's; password-free payments and static codes have their own caps besides."""
    payer = a.payer
    if payer is None:
        raise InvariantError("limits are reserved only for a payer")
    scopes = {
        f"qr:user:{payer.user_id}": payer.qr_daily_limit,
        f"card:{payer.card.id}": limits.DAILY_PER_CARD_MAX,
    }
    if not pin_ok:
        scopes[f"free:user:{payer.user_id}"] = FREE_DAILY_MAX
    if a.kind is PaymentKind.MPM_STATIC:
        scopes[f"static:user:{payer.user_id}"] = STATIC_DAILY_MAX
    return scopes


def claim_decline(
    a: Attempt, *, order_open: bool, code_unused: bool, limits_taken: bool
) -> DeclineReason | None:
    """Why a QR payment is declined at its claims, in check order, given what the unit of work
    found under lock: its dynamic order still open, its payment code still unused, its limits
    reserved. (The unit of work takes a claim only once the earlier ones held.)"""
    if a.order_id is not None and not order_open:
        return DeclineReason.ORDER_ALREADY_PAID
    if a.code_key is not None and not code_unused:
        return DeclineReason.CODE_ALREADY_USED
    if not limits_taken:
        return DeclineReason.LIMIT_EXCEEDED
    return None


def transfer_decline(
    payer: Payer, verdict: PinCheck, receiver: Card | None, amount: Money, now_ns: int
) -> TransferDecline | None:
    """Why a P2P transfer is declined before anything is written, in its ``DeclineReason``
    order: the PIN (always required), the sender's card, the recipient (found, active, not the
    sender's own card), then the per-transfer limit."""
    if verdict is not PinCheck.OK:
        return TransferDecline(verdict.value)
    card = _card_decline(payer, now_ns)
    if card is not None:
        return TransferDecline(card)
    if receiver is None:
        return TransferDecline.RECIPIENT_NOT_FOUND
    if receiver.status is not CardStatus.ACTIVE:
        return TransferDecline.RECIPIENT_UNAVAILABLE
    if receiver.id == payer.card.id:
        return TransferDecline.SAME_CARD
    if amount > Money.of(limits.PER_TRANSFER_MAX):
        return TransferDecline.LIMIT_EXCEEDED
    return None
