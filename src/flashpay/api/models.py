"""The ``api_idempotency`` table (migration ``api_0001``): one row per (caller, Idempotency-Key).

``status_code`` is NULL while the first request with the key is executing; then it holds the
response that every retry replays. ``request_hash`` is an HMAC of the method, path, query and body,
so a key reused with a different request is detected without storing the request (which may hold
a card number).
"""

from __future__ import annotations

import sqlalchemy as sa

from flashpay.db import metadata

PRINCIPAL_SCOPE_CHARS_MAX = 64
IDEMPOTENCY_KEY_CHARS_MAX = 255

idempotency_keys = sa.Table(
    "api_idempotency",
    metadata,
    sa.Column("principal", sa.String(PRINCIPAL_SCOPE_CHARS_MAX), primary_key=True),
    sa.Column("idempotency_key", sa.String(IDEMPOTENCY_KEY_CHARS_MAX), primary_key=True),
    sa.Column("request_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("content_type", sa.String(100), nullable=True),
    sa.Column("response_body", sa.LargeBinary, nullable=True),
    sa.Column("created_at_ns", sa.BigInteger, nullable=False),
    sa.Column("claimed_at_ns", sa.BigInteger, nullable=False),
    sa.Column("completed_at_ns", sa.BigInteger, nullable=True),
)
