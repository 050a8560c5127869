"""Tables of ``flashpay.settlement`` (migration ``settlement_0001``).

- ``settlement_windows``: one row per closed window — its chain-id range ``[start_ns,
  end_ns)``, state (``closed`` → ``settled``), the digest of its results (the audit log's
  commitment) and, once settled, the audit-log key of its settlement chain;
- ``settlement_positions``: per window and member, the figures of its settlement report;
- ``settlement_moves``: per window and cleared account, its net debit in the window (what the
  settlement chain reverses);
- ``settlement_files``: per window and member, each file written, with its SHA-256.

An open window has no row: it is the range after the last closed window's end.
"""

from __future__ import annotations

import sqlalchemy as sa

from flashpay.db import metadata

settlement_windows = sa.Table(
    "settlement_windows",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("start_ns", sa.BigInteger, nullable=False, unique=True),
    sa.Column("end_ns", sa.BigInteger, nullable=False, unique=True),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("closed_at_ns", sa.BigInteger, nullable=False),
    sa.Column("settled_at_ns", sa.BigInteger, nullable=True),
    sa.Column("results_digest", sa.String(64), nullable=False),
    sa.Column("transactions", sa.BigInteger, nullable=False),
    sa.Column("settlement_chain_id", sa.BigInteger, nullable=True),
)

settlement_positions = sa.Table(
    "settlement_positions",
    metadata,
    sa.Column("window_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("member", sa.String(16), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("owes_fen", sa.BigInteger, nullable=False),
    sa.Column("owed_fen", sa.BigInteger, nullable=False),
    sa.Column("refunds_fen", sa.BigInteger, nullable=False),
    sa.Column("interchange_fen", sa.BigInteger, nullable=False),
    sa.Column("network_fee_fen", sa.BigInteger, nullable=False),
    sa.Column("mdr_fen", sa.BigInteger, nullable=False),
    sa.Column("other_fen", sa.BigInteger, nullable=False),
    sa.Column("promotion_fen", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("net_fen", sa.BigInteger, nullable=False),
    sa.Column("books_net_fen", sa.BigInteger, nullable=False),
    sa.Column("transactions", sa.BigInteger, nullable=False),
)

settlement_moves = sa.Table(
    "settlement_moves",
    metadata,
    sa.Column("window_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("account_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("member", sa.String(16), nullable=False),
    sa.Column("net_debit_fen", sa.BigInteger, nullable=False),
)

settlement_files = sa.Table(
    "settlement_files",
    metadata,
    sa.Column("window_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("member", sa.String(16), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("path", sa.String(1024), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
)

# Per settled window and merchant: its statement and payout (migration ``settlement_0003``).
settlement_payouts = sa.Table(
    "settlement_payouts",
    metadata,
    sa.Column("window_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("merchant_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("acquirer", sa.String(16), nullable=False),
    sa.Column("value_date", sa.String(10), nullable=False),
    sa.Column("payments", sa.BigInteger, nullable=False),
    sa.Column("payments_fen", sa.BigInteger, nullable=False),
    sa.Column("refunds", sa.BigInteger, nullable=False),
    sa.Column("refunds_fen", sa.BigInteger, nullable=False),
    sa.Column("fees_fen", sa.BigInteger, nullable=False),
    sa.Column("net_fen", sa.BigInteger, nullable=False),
    sa.Column("carried_in_fen", sa.BigInteger, nullable=False),
    sa.Column("payout_fen", sa.BigInteger, nullable=False),
    sa.Column("carried_out_fen", sa.BigInteger, nullable=False),
)
