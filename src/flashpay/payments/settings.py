"""The user's own QR payment limits (checked here, written by the wallet that owns them)."""

from __future__ import annotations

from flashpay.payments.errors import PaymentError, PaymentRefusal
from flashpay.platform import Platform
from flashpay.wallet.payers import set_qr_limits
from flashpay.wallet.policy import FREE_DAILY_MAX, QR_DAILY_MAX


def set_payment_limits(
    *, platform: Platform, user_id: int, free_per_payment: int, qr_daily_limit: int
) -> None:
    """The user's own limits: the password-free threshold (≤ ¥1,000) and the daily total of QR
    payments (≤ ¥50,000, the limit the user agrees to)."""
    if not 0 <= free_per_payment <= FREE_DAILY_MAX:
        raise PaymentError(PaymentRefusal.INVALID_LIMIT, "the password-free threshold is ¥0–1,000")
    if not 0 < qr_daily_limit <= QR_DAILY_MAX:
        raise PaymentError(PaymentRefusal.INVALID_LIMIT, "the daily QR limit is up to ¥50,000")
    with platform.engine.begin() as connection:
        set_qr_limits(
            connection,
            user_id=user_id,
            free_per_payment=free_per_payment,
            qr_daily_limit=qr_daily_limit,
        )
