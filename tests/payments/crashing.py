"""A ledger that dies mid-payment, for the crash and recovery tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flashpay.ledger import Transfer


class CrashError(RuntimeError):
    """The process 'dies' here."""


class CrashingLedger:
    """The real ledger, except that ``create_transfers`` dies before or after posting."""

    def __init__(self, real: Any, *, after_post: bool) -> None:
        self._real = real
        self._after_post = after_post

    def create_transfers(self, transfers: Sequence[Transfer], **kwargs: Any) -> Any:
        if self._after_post:
            self._real.create_transfers(transfers, **kwargs)
        raise CrashError("killed")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)
