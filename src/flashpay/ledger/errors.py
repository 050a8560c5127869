"""Exceptions of the ledger: only for misuse and infrastructure, never for a rejected event.

A rejected account or transfer is a value (``CreateAccountResult`` / ``CreateTransferResult``);
these are raised for a batch over the size limit (a caller bug), a database that stays
unavailable or contended past the retry budget, and a broken internal invariant.
"""

from __future__ import annotations

from flashpay.errors import FlashpayError, InvariantError, invariant

__all__ = [
    "BatchTooLargeError",
    "InvariantError",
    "LedgerError",
    "RetriesExhaustedError",
    "invariant",
]


class LedgerError(FlashpayError):
    """Base of every exception the ledger raises."""


class BatchTooLargeError(LedgerError, ValueError):
    """More events in one call than ``BATCH_EVENTS_MAX``."""


class RetriesExhaustedError(LedgerError):
    """Deadlocks or serialization failures persisted past ``RETRIES_MAX`` attempts."""
