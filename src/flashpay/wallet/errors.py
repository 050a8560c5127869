"""The wallet's refusals: ``WalletError``, and the throttle's refusals turned into one."""

from __future__ import annotations

from flashpay.wallet import throttle


class WalletError(ValueError):
    """A refused wallet request; ``code`` is the API error code, ``status`` its HTTP status.
    ``index`` is the refused card's position in an ``enrol_cards`` batch (else ``None``);
    ``retry_after_seconds`` says when a throttled request (a 429) may be tried again."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 422,
        *,
        index: int | None = None,
        retry_after_seconds: int | None = None,
    ) -> None:
        super().__init__(message if index is None else f"card_ids[{index}]: {message}")
        self.code = code
        self.status = status
        self.index = index
        self.retry_after_seconds = retry_after_seconds


_REFUSAL_MESSAGES = {
    throttle.ACCOUNT_LOCKED: "too many wrong passwords: the account is locked for a while",
    throttle.TOO_MANY_ATTEMPTS: "too many attempts: wait before trying again",
}


def throttled(refusal: throttle.Refusal) -> WalletError:
    """The ``WalletError`` (a 429) for a password check the throttle allows no try for now."""
    return WalletError(
        refusal.code,
        _REFUSAL_MESSAGES[refusal.code],
        status=429,
        retry_after_seconds=refusal.retry_after_seconds,
    )
