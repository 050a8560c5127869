"""Tables of ``flashpay.cards`` (migration ``cards_0001``): the issuers' card records and the
network's tokens. A card number is stored only encrypted (``pan_ciphertext`` under vault key
``pan_key_id``) with a keyed fingerprint for look-ups and its first 6 / last 4 for display."""

from __future__ import annotations

import sqlalchemy as sa

from flashpay.db import metadata

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

cards = sa.Table(
    "cards",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("issuer_id", sa.BigInteger, nullable=False),
    sa.Column("pan_key_id", sa.SmallInteger, nullable=False),
    sa.Column("pan_ciphertext", sa.LargeBinary, nullable=False),
    sa.Column("pan_fingerprint", sa.LargeBinary(32), nullable=False, unique=True),
    sa.Column("pan_first6", sa.String(6), nullable=False),
    sa.Column("pan_last4", sa.String(4), nullable=False),
    sa.Column("pan_length", sa.SmallInteger, nullable=False),
    sa.Column("card_type", sa.String(8), nullable=False),
    sa.Column("expiry", sa.String(4), nullable=False),  # YYMM
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("holder_name", sa.String(64), nullable=False),
    sa.Column("holder_id_fingerprint", sa.LargeBinary(32), nullable=False),
    sa.Column("phone", sa.String(20), nullable=False),
    sa.Column("ledger_account_id", sa.BigInteger, nullable=False, unique=True),
    sa.Column("credit_limit", sa.BigInteger, nullable=False),
    sa.Column("statement_day", sa.SmallInteger, nullable=True),
    sa.Column("created_at_ns", sa.BigInteger, nullable=False),
)

card_tokens = sa.Table(
    "card_tokens",
    metadata,
    sa.Column("token", sa.String(19), primary_key=True),
    sa.Column("card_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("created_at_ns", sa.BigInteger, nullable=False),
)
