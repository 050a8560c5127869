"""payments: QR payments, their history, issued payment codes and token counters."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "payments_0002"
down_revision = "payments_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("id", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("wallet_card_id", sa.BigInteger(), nullable=True),
        sa.Column("card_id", sa.BigInteger(), nullable=True),
        sa.Column("merchant_id", sa.BigInteger(), nullable=True),
        sa.Column("terminal_id", sa.BigInteger(), nullable=True),
        sa.Column("order_id", sa.BigInteger(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("captured", sa.BigInteger(), nullable=False),
        sa.Column("refunded", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("decline_reason", sa.String(32), nullable=True),
        sa.Column("voucher", sa.String(32), nullable=True),
        sa.Column("pin_verified", sa.Boolean(), nullable=False),
        sa.Column("two_phase", sa.Boolean(), nullable=False),
        sa.Column("hold_expires_at_ns", sa.BigInteger(), nullable=True),
        sa.Column("commitment_salt", sa.LargeBinary(16), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("created_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_payments"),
        sa.UniqueConstraint("voucher", name="uq_payments_voucher"),
    )
    op.create_index("ix_payments_user_id_id", "payments", ["user_id", "id"])
    op.create_index("ix_payments_merchant_id_id", "payments", ["merchant_id", "id"])
    op.create_table(
        "payment_events",
        sa.Column("payment_id", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("seq", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("at_ns", sa.BigInteger(), nullable=False),
        sa.Column("detail", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("payment_id", "seq", name="pk_payment_events"),
    )
    op.create_table(
        "payment_codes",
        sa.Column("token", sa.String(19), nullable=False),
        sa.Column("atc", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("numeric", sa.String(19), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("wallet_card_id", sa.BigInteger(), nullable=False),
        sa.Column("issued_at", sa.BigInteger(), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("unpredictable", sa.LargeBinary(4), nullable=False),
        sa.Column("cryptogram", sa.LargeBinary(8), nullable=False),
        sa.Column("credit", sa.Boolean(), nullable=False),
        sa.Column("used_at_ns", sa.BigInteger(), nullable=True),
        sa.Column("payment_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("token", "atc", name="pk_payment_codes"),
        sa.UniqueConstraint("numeric", name="uq_payment_codes_numeric"),
    )
    op.create_table(
        "token_counters",
        sa.Column("token", sa.String(19), nullable=False),
        sa.Column("atc", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("token", name="pk_token_counters"),
    )


def downgrade() -> None:
    op.drop_table("token_counters")
    op.drop_table("payment_codes")
    op.drop_table("payment_events")
    op.drop_index("ix_payments_merchant_id_id", table_name="payments")
    op.drop_index("ix_payments_user_id_id", table_name="payments")
    op.drop_table("payments")
