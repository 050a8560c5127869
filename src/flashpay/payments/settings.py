"""The user's own QR payment limits."""

from __future__ import annotations

from flashpay.platform import Platform
from flashpay.wallet.models import wallet_users
from flashpay.wallet.service import (
    FREE_DAILY_MAX,
    WalletError,
)


def set_payment_limits(
    *, platform: Platform, user_id: int, free_per_payment: int, qr_daily_limit: int
) -> None:
    """The user's own limits: the password-free threshold (≤ ¥1,000) and the daily total of QR
    payments (≤ ¥50,000, the limit the user agrees to)."""
    from flashpay.wallet.service import QR_DAILY_MAX

    if not 0 <= free_per_payment <= FREE_DAILY_MAX:
        raise WalletError("invalid_limit", "the password-free threshold is ¥0–1,000")
    if not 0 < qr_daily_limit <= QR_DAILY_MAX:
        raise WalletError("invalid_limit", "the daily QR limit is up to ¥50,000")
    with platform.engine.begin() as connection:
        connection.execute(
            wallet_users.update()
            .where(wallet_users.c.id == user_id)
            .values(free_per_payment=free_per_payment, qr_daily_limit=qr_daily_limit)
        )
