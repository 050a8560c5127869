"""Tables of ``flashpay.merchants`` (migration ``merchants_0001``)."""

from __future__ import annotations

import sqlalchemy as sa

from flashpay.db import metadata

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

merchants = sa.Table(
    "merchants",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("acquirer_id", sa.BigInteger, nullable=False),
    sa.Column("code", sa.String(15), nullable=False, unique=True),  # the QR's merchant ID
    sa.Column("legal_name", sa.String(100), nullable=False),
    sa.Column("display_name", sa.String(25), nullable=False),
    sa.Column("city", sa.String(15), nullable=False),
    sa.Column("mcc", sa.String(4), nullable=False),
    sa.Column("scene", sa.String(20), nullable=False),
    sa.Column("ledger_account_id", sa.BigInteger, nullable=False, unique=True),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("created_at_ns", sa.BigInteger, nullable=False),
)

terminals = sa.Table(
    "terminals",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("merchant_id", sa.BigInteger, nullable=False),
    sa.Column("code", sa.String(8), nullable=False),  # "T0001", in the QR's template 26
    sa.Column("created_at_ns", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("merchant_id", "code", name="uq_terminals_merchant_id"),
)

qr_orders = sa.Table(
    "qr_orders",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("merchant_id", sa.BigInteger, nullable=False),
    sa.Column("terminal_id", sa.BigInteger, nullable=True),
    sa.Column("bill_number", sa.String(25), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),  # open | paid
    sa.Column("payment_id", sa.BigInteger, nullable=True),
    sa.Column("created_at_ns", sa.BigInteger, nullable=False),
    sa.Column("expires_at_ns", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("merchant_id", "bill_number", name="uq_qr_orders_merchant_id"),
)
