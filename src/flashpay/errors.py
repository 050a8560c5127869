"""The root of every error flashpay raises on purpose, and the one way to state an invariant.

Three kinds of failure, three branches of one tree (``docs/reference/errors.md``):

- ``RefusedError``: a request refused for a named reason. ``reason`` is a member of the refusing
  domain's closed ``StrEnum`` of refusals (listed in check order); its value is the error code the
  API answers, which clients branch on. Domains never know HTTP: the status for each reason is one
  table in the API layer.
- ``InvariantError``: a broken internal promise — a bug, never the caller's fault; the API answers
  500 without internals.
- ``UnavailableError``: a service outside flashpay (an SMS gateway) did not take the request;
  nothing was decided and the caller may retry (503).
- any other ``FlashpayError`` subclass: an infrastructure failure a domain names (retries
  exhausted), answered 500 by the API layer.

``invariant()`` replaces bare ``assert`` for invariants: ``python -O`` strips asserts, and an
invariant that vanishes in production is worse than none.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class FlashpayError(Exception):
    """Base of every exception flashpay raises on purpose."""


class RefusedError(FlashpayError):
    """A request refused for ``reason`` (a member of a domain's refusal enum); nothing recorded.

    ``details`` carries structured context for the client (never a secret or a card number);
    ``retry_after_seconds`` says when a throttled request may be tried again.
    """

    def __init__(
        self,
        reason: StrEnum,
        message: str,
        *,
        details: Mapping[str, Any] | None = None,
        retry_after_seconds: int | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.details = dict(details or {})
        self.retry_after_seconds = retry_after_seconds

    @property
    def code(self) -> str:
        """The API error code: the reason's value."""
        return str(self.reason.value)


class UnavailableError(FlashpayError):
    """A service outside flashpay (an SMS gateway) could not be reached: nothing was decided, the
    caller may try again. The API answers 503 with ``code`` and ``Retry-After``, and does not
    store the answer under the request's Idempotency-Key."""

    code = "unavailable"
    retry_after_seconds = 5
    message = "a service flashpay depends on is unavailable; try again shortly"


class InvariantError(FlashpayError):
    """An internal invariant failed: a bug, never an expected outcome."""


def invariant(condition: bool, message: str, *args: object) -> None:
    """Raise ``InvariantError`` unless ``condition`` (unlike ``assert``, survives ``-O``).

    On a hot path, pass the message's values as ``args`` (``%s`` placeholders) rather than an
    f-string: the message is then formatted only when the invariant fails, not on every call."""
    if not condition:
        raise InvariantError(message % args if args else message)
