"""merchants: merchants signed by acquirers, their terminals, and dynamic QR orders."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "merchants_0001"
down_revision = None
branch_labels = ("merchants",)
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "merchants",
        sa.Column("id", ID, primary_key=True),
        sa.Column("acquirer_id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(15), nullable=False),
        sa.Column("legal_name", sa.String(100), nullable=False),
        sa.Column("display_name", sa.String(25), nullable=False),
        sa.Column("city", sa.String(15), nullable=False),
        sa.Column("mcc", sa.String(4), nullable=False),
        sa.Column("scene", sa.String(20), nullable=False),
        sa.Column("ledger_account_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("created_at_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_merchants"),
        sa.UniqueConstraint("code", name="uq_merchants_code"),
        sa.UniqueConstraint("ledger_account_id", name="uq_merchants_ledger_account_id"),
    )
    op.create_table(
        "terminals",
        sa.Column("id", ID, primary_key=True),
        sa.Column("merchant_id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(8), nullable=False),
        sa.Column("created_at_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_terminals"),
        sa.UniqueConstraint("merchant_id", "code", name="uq_terminals_merchant_id"),
    )
    op.create_table(
        "qr_orders",
        sa.Column("id", ID, primary_key=True),
        sa.Column("merchant_id", sa.BigInteger(), nullable=False),
        sa.Column("terminal_id", sa.BigInteger(), nullable=True),
        sa.Column("bill_number", sa.String(25), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("payment_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_qr_orders"),
        sa.UniqueConstraint("merchant_id", "bill_number", name="uq_qr_orders_merchant_id"),
    )


def downgrade() -> None:
    op.drop_table("qr_orders")
    op.drop_table("terminals")
    op.drop_table("merchants")
