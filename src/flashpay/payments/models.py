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
