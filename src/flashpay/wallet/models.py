"""Tables of ``flashpay.wallet`` (migration ``wallet_0001``). No card number, CVV, PIN or ID
number is stored: the PIN and password as Argon2id hashes, the ID number as a keyed fingerprint,
one-time codes as keyed hashes, session tokens as SHA-256."""

from __future__ import annotations

import sqlalchemy as sa

from flashpay.db import metadata

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

wallet_users = sa.Table(
    "wallet_users",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("phone", sa.String(20), nullable=False, unique=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("id_fingerprint", sa.LargeBinary(32), nullable=False),
    sa.Column("password_hash", sa.String(128), nullable=False),
    sa.Column("pin_hash", sa.String(128), nullable=True),
    sa.Column("pin_failures", sa.Integer, nullable=False),
    sa.Column("pin_locked_until_ns", sa.BigInteger, nullable=True),
    sa.Column("real_name_verified", sa.Boolean, nullable=False),
    sa.Column("cards_version", sa.Integer, nullable=False),  # bumped to serialise bindings
    # PBOC barcode-payment limits the user chose (fen): the password-free threshold per payment
    # and the daily total of QR payments.
    sa.Column("free_per_payment", sa.BigInteger, nullable=False),
    sa.Column("qr_daily_limit", sa.BigInteger, nullable=False),
    sa.Column("created_at_ns", sa.BigInteger, nullable=False),
)

wallet_sessions = sa.Table(
    "wallet_sessions",
    metadata,
    sa.Column("token_hash", sa.LargeBinary(32), primary_key=True),
    sa.Column("user_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("created_at_ns", sa.BigInteger, nullable=False),
    sa.Column("expires_at_ns", sa.BigInteger, nullable=False),
)

wallet_cards = sa.Table(
    "wallet_cards",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("user_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("card_id", sa.BigInteger, nullable=False),
    sa.Column("token", sa.String(19), nullable=False, unique=True),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("is_default", sa.Boolean, nullable=False),
    sa.Column("bound_at_ns", sa.BigInteger, nullable=False),
    sa.Column("unbound_at_ns", sa.BigInteger, nullable=True),
)

wallet_bindings = sa.Table(
    "wallet_bindings",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("user_id", sa.BigInteger, nullable=False),
    sa.Column("card_id", sa.BigInteger, nullable=False),
    sa.Column("otp_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("created_at_ns", sa.BigInteger, nullable=False),
    sa.Column("expires_at_ns", sa.BigInteger, nullable=False),
    # "app": the user, with the issuer's one-time code; "issuer": the issuer enrolled the card
    # (migration wallet_0002).
    sa.Column("channel", sa.String(8), nullable=False, server_default="app"),
)
