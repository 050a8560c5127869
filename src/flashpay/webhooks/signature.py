"""Signing a delivery and verifying it, in the Stripe manner.

Every delivery carries ``Flashpay-Signature: t=<unix seconds>,v1=<hex>`` where ``<hex>`` is
HMAC-SHA256, keyed by the endpoint's secret (the whole ``whsec_…`` text, as UTF-8), over the
bytes ``<t>.<body>`` — the timestamp in decimal ASCII, a full stop, then the request body
exactly as sent. Signing the timestamp with the body lets a receiver refuse a replayed old
delivery: ``verify`` accepts a signature only within ``tolerance_seconds`` (default 300) of its
own clock. During a secret rotation's overlap a header may carry several ``v1=`` values (one per
secret); any one that matches is enough. A receiver in another language needs only HMAC-SHA256
and a constant-time compare.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence
from enum import StrEnum

SIGNATURE_HEADER = "Flashpay-Signature"
EVENT_ID_HEADER = "Flashpay-Event-Id"
TOLERANCE_SECONDS = 300
HEADER_CHARS_MAX = 1024


class SignatureProblem(StrEnum):
    """Why ``verify`` refused a delivery, in the order it checks."""

    MALFORMED_HEADER = "malformed_header"
    TIMESTAMP_OUTSIDE_TOLERANCE = "timestamp_outside_tolerance"
    NO_MATCHING_SIGNATURE = "no_matching_signature"


class SignatureError(ValueError):
    def __init__(self, problem: SignatureProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``<timestamp>.<body>`` under ``secret``."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign_header(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """The ``Flashpay-Signature`` value: ``t=…`` and one ``v1=…`` per secret."""
    parts = [f"t={timestamp}"] + [f"v1={signature(s, timestamp, body)}" for s in secrets]
    return ",".join(parts)


def verify(
    secret: str,
    header: str,
    body: bytes,
    *,
    tolerance_seconds: int = TOLERANCE_SECONDS,
    now_seconds: int | None = None,
) -> int:
    """Check a delivery's ``Flashpay-Signature`` against ``secret``; returns its timestamp, or
    raises ``SignatureError`` naming the problem. ``body`` must be the raw bytes received."""
    if len(header) > HEADER_CHARS_MAX:
        raise SignatureError(SignatureProblem.MALFORMED_HEADER)
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureError(SignatureProblem.MALFORMED_HEADER)
        if key == "t":
            if not value.isdigit() or timestamp is not None:
                raise SignatureError(SignatureProblem.MALFORMED_HEADER)
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError(SignatureProblem.MALFORMED_HEADER)
    now = int(time.time()) if now_seconds is None else now_seconds
    if abs(now - timestamp) > tolerance_seconds:
        raise SignatureError(SignatureProblem.TIMESTAMP_OUTSIDE_TOLERANCE)
    expected = signature(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureError(SignatureProblem.NO_MATCHING_SIGNATURE)
    return timestamp
