"""The ``auth_api_keys`` table (migration ``auth_0001``)."""

from __future__ import annotations

import sqlalchemy as sa

from flashpay.db import metadata

KEY_HASH_BYTES = 32  # SHA-256
KEY_PREFIX_CHARS = 12  # "fpk_" + 8 characters: enough to tell keys apart in a listing

api_keys = sa.Table(
    "auth_api_keys",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("key_hash", sa.LargeBinary(KEY_HASH_BYTES), nullable=False, unique=True),
    sa.Column("key_prefix", sa.String(KEY_PREFIX_CHARS), nullable=False),
    sa.Column("principal_kind", sa.String(16), nullable=False),
    sa.Column("principal_id", sa.BigInteger, nullable=False),
    sa.Column("network_admin", sa.Boolean, nullable=False),
    sa.Column("created_at_ns", sa.BigInteger, nullable=False),
    sa.Column("revoked_at_ns", sa.BigInteger, nullable=True),
)
