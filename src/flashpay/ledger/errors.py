"""Exceptions of the ledger: only for misuse and infrastructure, never for a rejected event.

A rejected account or transfer is a value (``CreateAccountResult`` / ``CreateTransferResult``);
these are raised for a batch over the size limit (a caller bug), a database that stays
unavailable or contended past the retry budget, and a broken internal invariant.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every exception the ledger raises."""


class BatchTooLargeError(LedgerError, ValueError):
    """More events in one call than ``BATCH_EVENTS_MAX``."""


class RetriesExhaustedError(LedgerError):
    """Deadlocks or serialization failures persisted past ``RETRIES_MAX`` attempts."""


class InvariantError(LedgerError):
    """An internal invariant failed: a bug, never an expected outcome."""


def invariant(condition: bool, message: str) -> None:
    """Raise ``InvariantError`` unless ``condition`` (unlike ``assert``, survives ``-O``)."""
    if not condition:
        raise InvariantError(message)
