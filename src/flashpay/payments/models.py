"""Tables of ``flashpay.payments`` (migration ``payments_0001``)."""

from __future__ import annotations

import sqlalchemy as sa

from flashpay.db import metadata

p2p_transfers = sa.Table(
    "p2p_transfers",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("user_id", sa.BigInteger, nullable=False),
    sa.Column("from_wallet_card_id", sa.BigInteger, nullable=False),
    sa.Column("from_card_id", sa.BigInteger, nullable=False),
    sa.Column("to_card_id", sa.BigInteger, nullable=True),
    sa.Column("recipient_kind", sa.String(8), nullable=False),  # phone | card
    sa.Column("recipient_display", sa.String(32), nullable=False),  # masked phone or card
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("decline_reason", sa.String(32), nullable=True),
    sa.Column("voucher", sa.String(32), nullable=True, unique=True),
    sa.Column("memo", sa.String(64), nullable=True),
    sa.Column("commitment_salt", sa.LargeBinary(16), nullable=False),
    sa.Column("day", sa.String(10), nullable=False),  # Beijing date, for daily limits
    sa.Column("created_at_ns", sa.BigInteger, nullable=False),
    sa.Column("completed_at_ns", sa.BigInteger, nullable=True),
    sa.Index("ix_p2p_transfers_user_id_id", "user_id", "id"),
)

limit_usage = sa.Table(
    "limit_usage",
    metadata,
    sa.Column("scope", sa.String(32), primary_key=True),  # "user:42", "card:7"
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("used", sa.BigInteger, nullable=False),
)

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(12), nullable=False),  # mpm_static | mpm_dynamic | cpm
    sa.Column("user_id", sa.BigInteger, nullable=True),
    sa.Column("wallet_card_id", sa.BigInteger, nullable=True),
    sa.Column("card_id", sa.BigInteger, nullable=True),
    sa.Column("merchant_id", sa.BigInteger, nullable=True),
    sa.Column("terminal_id", sa.BigInteger, nullable=True),
    sa.Column("order_id", sa.BigInteger, nullable=True),
    sa.Column("amount", sa.BigInteger, nullable=False),  # authorized (or paid) amount, fen
    sa.Column("captured", sa.BigInteger, nullable=False),  # what the merchant is paid
    sa.Column("refunded", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("decline_reason", sa.String(32), nullable=True),
    sa.Column("voucher", sa.String(32), nullable=True, unique=True),
    sa.Column("pin_verified", sa.Boolean, nullable=False),
    sa.Column("two_phase", sa.Boolean, nullable=False),
    sa.Column("hold_expires_at_ns", sa.BigInteger, nullable=True),
    sa.Column("commitment_salt", sa.LargeBinary(16), nullable=False),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("created_at_ns", sa.BigInteger, nullable=False),
    sa.Column("updated_at_ns", sa.BigInteger, nullable=False),
    # payments_0004: a promotion's discount (fen) and its shares (JSON, ``plans.shares_json``)
    sa.Column("discount", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("promotions", sa.Text, nullable=True),
    sa.Index("ix_payments_user_id_id", "user_id", "id"),
    sa.Index("ix_payments_merchant_id_id", "merchant_id", "id"),
)

payment_events = sa.Table(
    "payment_events",
    metadata,
    sa.Column("payment_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("at_ns", sa.BigInteger, nullable=False),
    sa.Column("detail", sa.String(64), nullable=True),
)

payment_codes = sa.Table(
    "payment_codes",
    metadata,
    sa.Column("token", sa.String(19), primary_key=True),
    sa.Column("atc", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("numeric", sa.String(19), nullable=False, unique=True),
    sa.Column("user_id", sa.BigInteger, nullable=False),
    sa.Column("wallet_card_id", sa.BigInteger, nullable=False),
    sa.Column("issued_at", sa.BigInteger, nullable=False),  # Unix seconds, as in the code
    sa.Column("key_version", sa.Integer, nullable=False),
    sa.Column("unpredictable", sa.LargeBinary(4), nullable=False),
    sa.Column("cryptogram", sa.LargeBinary(8), nullable=False),
    sa.Column("credit", sa.Boolean, nullable=False),
    sa.Column("used_at_ns", sa.BigInteger, nullable=True),
    sa.Column("payment_id", sa.BigInteger, nullable=True),
)

token_counters = sa.Table(
    "token_counters",
    metadata,
    sa.Column("token", sa.String(19), primary_key=True),
    sa.Column("atc", sa.Integer, nullable=False),
)

payment_refunds = sa.Table(
    "payment_refunds",
    metadata,
    sa.Column("payment_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),  # the refund's number
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(12), nullable=False),  # created | completed | failed
    sa.Column("created_at_ns", sa.BigInteger, nullable=False),
    sa.Index("ix_payment_refunds_status", "status"),
)
