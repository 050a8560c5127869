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

# Attempt counters of password checks (migration wallet_0003, ``flashpay.wallet.throttle``): one
# row per scope — ``phone:<phone>`` for an account (known or not), ``ip:<address>`` for a source.
wallet_attempts = sa.Table(
    "wallet_attempts",
    metadata,
    sa.Column("scope", sa.String(80), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),  # in a row, since the last success or lock
    sa.Column("lockouts", sa.Integer, nullable=False),  # locks since the counts were last cleared
    sa.Column("next_attempt_ns", sa.BigInteger, nullable=False),  # back-off: no try before
    sa.Column("locked_until_ns", sa.BigInteger, nullable=False),  # lock: no try before
    sa.Column("last_failure_ns", sa.BigInteger, nullable=False),
)

# Daily counts of card-binding starts (migration wallet_0003): one row per (scope, Beijing day),
# scope ``card:<fingerprint>``, ``user:<id>`` or ``phone:<phone the code is sent to>``.
wallet_daily_counts = sa.Table(
    "wallet_daily_counts",
    metadata,
    sa.Column("scope", sa.String(96), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
)
