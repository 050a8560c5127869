"""payments: refunds as records of their own, so a crash between a refund's record and its
ledger posting is recovered (and two refunds of one payment never share a number)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "payments_0003"
down_revision = "payments_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payment_refunds",
        sa.Column("payment_id", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("seq", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),  # created | completed | failed
        sa.Column("created_at_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("payment_id", "seq", name="pk_payment_refunds"),
    )
    op.create_index("ix_payment_refunds_status", "payment_refunds", ["status"])
    # Refunds made before this table: their ledger ids were numbered by their history event.
    op.execute(
        "INSERT INTO payment_refunds (payment_id, seq, amount, status, created_at_ns) "
        "SELECT payment_id, seq, amount, 'completed', at_ns FROM payment_events "
        "WHERE detail = 'refund'"
    )


def downgrade() -> None:
    op.drop_index("ix_payment_refunds_status", table_name="payment_refunds")
    op.drop_table("payment_refunds")
