"""ledger: accounts, transfers, pending transfers, balance deltas, history, chains and outbox.

Revision ID: ledger_0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "ledger_0001"
down_revision = None
branch_labels = ("ledger",)
depends_on = None

_AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _balances() -> list[sa.Column[int]]:
    return [
        sa.Column("debits_pending", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("debits_posted", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("credits_pending", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("credits_posted", sa.BigInteger, nullable=False, server_default="0"),
    ]


def upgrade() -> None:
    op.create_table(
        "ledger_accounts",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("ledger", sa.Integer, nullable=False),
        sa.Column("code", sa.Integer, nullable=False),
        sa.Column("flags", sa.Integer, nullable=False),
        sa.Column("credit_limit", sa.BigInteger, nullable=False),
        sa.Column("user_data_128", sa.LargeBinary(16), nullable=False),
        sa.Column("user_data_64", sa.BigInteger, nullable=False),
        sa.Column("user_data_32", sa.BigInteger, nullable=False),
        *_balances(),
        sa.Column("timestamp", sa.BigInteger, nullable=False, unique=True),
    )
    # Balance changes that cannot break the account's limit, appended instead of updating a hot
    # row (PostgreSQL); folded into ledger_accounts by compaction. SQLite never writes here.
    op.create_table(
        "ledger_balance_deltas",
        sa.Column("seq", _AUTO_ID, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.BigInteger, nullable=False, index=True),
        *_balances(),
    )
    op.create_table(
        "ledger_transfers",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("debit_account_id", sa.BigInteger, nullable=False),
        sa.Column("credit_account_id", sa.BigInteger, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("pending_id", sa.BigInteger, nullable=False),
        sa.Column("user_data_128", sa.LargeBinary(16), nullable=False),
        sa.Column("user_data_64", sa.BigInteger, nullable=False),
        sa.Column("user_data_32", sa.BigInteger, nullable=False),
        sa.Column("timeout_seconds", sa.BigInteger, nullable=False),
        sa.Column("ledger", sa.Integer, nullable=False),
        sa.Column("code", sa.Integer, nullable=False),
        sa.Column("flags", sa.Integer, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False, unique=True),
        sa.Column("chain_id", sa.BigInteger, nullable=False, index=True),
    )
    op.create_index(
        "ix_ledger_transfers_debit", "ledger_transfers", ["debit_account_id", "timestamp"]
    )
    op.create_index(
        "ix_ledger_transfers_credit", "ledger_transfers", ["credit_account_id", "timestamp"]
    )
    op.create_table(
        "ledger_pending",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("state", sa.SmallInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_ledger_pending_due", "ledger_pending", ["state", "expires_at"])
    op.create_table(
        "ledger_account_history",
        sa.Column("account_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("timestamp", sa.BigInteger, primary_key=True, autoincrement=False),
        *_balances(),
    )
    op.create_table(
        "ledger_chains",
        sa.Column("chain_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("commitment", sa.LargeBinary(32), nullable=True),
    )
    op.create_table(
        "ledger_outbox",
        sa.Column("chain_id", sa.BigInteger, primary_key=True, autoincrement=False),
    )
    clock = op.create_table(
        "ledger_clock",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last_timestamp", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(clock, [{"id": 1, "last_timestamp": 0}])


def downgrade() -> None:
    for table in (
        "ledger_clock",
        "ledger_outbox",
        "ledger_chains",
        "ledger_account_history",
        "ledger_pending",
        "ledger_transfers",
        "ledger_balance_deltas",
        "ledger_accounts",
    ):
        op.drop_table(table)
