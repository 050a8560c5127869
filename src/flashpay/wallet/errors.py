"""The wallet's refusals: the closed list of reasons (``WalletRefusal``) and ``WalletError``.

A refusal names its reason; the HTTP status for each is the API layer's business (one table
from code to status there), so nothing here knows HTTP. The throttle hands back its refusals as
values (``throttle.Refusal``, whose code is one of the reasons below); ``throttled`` turns one
into the error a password check raises.
"""

from __future__ import annotations

from enum import StrEnum

from flashpay.errors import RefusedError
from flashpay.wallet import throttle


class WalletRefusal(StrEnum):
    """Why the wallet refused a request, in the order the checks run (registration, login and
    password checks, the PIN, starting a binding, confirming one, the wallet's cards, issuer
    enrolment). The values are the API's error codes."""

    # registration
    INVALID_PHONE = "invalid_phone"
    INVALID_ID_NUMBER = "invalid_id_number"
    INVALID_NAME = "invalid_name"
    WEAK_PASSWORD = "weak_password"
    PHONE_ALREADY_REGISTERED = "phone_already_registered"
    # login and password checks (the throttle's two first)
    ACCOUNT_LOCKED = throttle.ACCOUNT_LOCKED
    TOO_MANY_ATTEMPTS = throttle.TOO_MANY_ATTEMPTS
    INVALID_LOGIN = "invalid_login"
    WRONG_PASSWORD = "wrong_password"
    # the payment PIN
    INVALID_PIN = "invalid_pin"
    WEAK_PIN = "weak_pin"
    # starting a binding
    INVALID_CARD_NUMBER = "invalid_card_number"
    INVALID_EXPIRY = "invalid_expiry"
    BINDING_LIMIT_REACHED = throttle.BINDING_LIMIT_REACHED
    UNKNOWN_BIN = "unknown_bin"
    CARD_NOT_RECOGNISED = "card_not_recognised"
    CARD_EXPIRED = "card_expired"
    CARD_CLOSED = "card_closed"
    CVV_REQUIRED = "cvv_required"
    REAL_NAME_MISMATCH = "real_name_mismatch"
    CARD_ALREADY_BOUND = "card_already_bound"
    TOO_MANY_CARDS = "too_many_cards"
    # confirming a binding, and the wallet's cards
    NOT_FOUND = "not_found"
    BINDING_CLOSED = "binding_closed"
    OTP_EXPIRED = "otp_expired"
    WRONG_OTP = "wrong_otp"
    OTP_ATTEMPTS_EXCEEDED = "otp_attempts_exceeded"
    # issuer enrolment
    BATCH_TOO_LARGE = "batch_too_large"
    WALLET_NOT_FOUND = "wallet_not_found"


class WalletError(RefusedError):
    """A refused wallet request; ``code`` is the API error code (``reason.value``). ``index``
    is the refused card's position in an ``enrol_cards`` batch (else ``None``; also in
    ``details``, the one thing of the batch the answer repeats); ``retry_after_seconds`` says
    when a throttled request may be tried again."""

    reason: WalletRefusal

    def __init__(
        self,
        reason: WalletRefusal,
        message: str,
        *,
        index: int | None = None,
        retry_after_seconds: int | None = None,
    ) -> None:
        super().__init__(
            reason,
            message if index is None else f"card_ids[{index}]: {message}",
            details=None if index is None else {"index": index},
            retry_after_seconds=retry_after_seconds,
        )
        self.index = index


_THROTTLE_MESSAGES = {
    WalletRefusal.ACCOUNT_LOCKED: "too many wrong passwords: the account is locked for a while",
    WalletRefusal.TOO_MANY_ATTEMPTS: "too many attempts: wait before trying again",
}


def throttled(refusal: throttle.Refusal) -> WalletError:
    """The ``WalletError`` for a password check the throttle allows no try for now."""
    reason = WalletRefusal(refusal.code)
    return WalletError(
        reason, _THROTTLE_MESSAGES[reason], retry_after_seconds=refusal.retry_after_seconds
    )
