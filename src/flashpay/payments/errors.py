"""The refusals of payments: a request that cannot be carried out, with nothing recorded.

A refusal is not a decline. A declined payment is recorded and answered (a 201 with its
``DeclineReason``, decision 0005); a refused request never became a payment — a card that is
not the caller's, a malformed amount, a refund of more than was paid. ``PaymentRefusal`` lists
them in the order the pipeline checks them; its values are the API's error codes.
"""

from __future__ import annotations

from enum import StrEnum

from flashpay.errors import RefusedError


class PaymentRefusal(StrEnum):
    """Why a payment request was refused; closed, in check order (values = API error codes)."""

    # a transfer's own fields (checked before anything is read)
    UNSUPPORTED_CURRENCY = "unsupported_currency"
    INVALID_RECIPIENT = "invalid_recipient"  # exactly one of a phone and a card number
    INVALID_MEMO = "invalid_memo"
    INVALID_PHONE = "invalid_phone"
    INVALID_CARD_NUMBER = "invalid_card_number"
    # the user's own QR limits
    INVALID_LIMIT = "invalid_limit"
    # a payment, hold or refund
    NOT_FOUND = "not_found"  # the card, merchant or payment is not the caller's
    UNKNOWN_TERMINAL = "unknown_terminal"
    INVALID_AMOUNT = "invalid_amount"
    INVALID_HOLD = "invalid_hold"
    AMOUNT_MISMATCH = "amount_mismatch"  # a dynamic code carries its own amount
    AMOUNT_REQUIRED = "amount_required"  # a static code does not
    NOT_AUTHORIZED = "not_authorized"  # a hold to settle is no longer authorized
    NOT_REFUNDABLE = "not_refundable"
    REFUND_EXCEEDS_PAYMENT = "refund_exceeds_payment"
    HOLD_NOT_SETTLED = "hold_not_settled"  # the ledger refused the settlement chain
    REFUND_FAILED = "refund_failed"  # the ledger refused the reversing chain


class PaymentError(RefusedError):
    """A payment request refused for ``reason``; nothing recorded."""

    reason: PaymentRefusal

    def __init__(self, reason: PaymentRefusal, message: str) -> None:
        super().__init__(reason, message)
