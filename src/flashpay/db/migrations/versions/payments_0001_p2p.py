"""payments: P2P transfers and the daily limit counters."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "payments_0001"
down_revision = None
branch_labels = ("payments",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "p2p_transfers",
        sa.Column("id", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("from_wallet_card_id", sa.BigInteger(), nullable=False),
        sa.Column("from_card_id", sa.BigInteger(), nullable=False),
        sa.Column("to_card_id", sa.BigInteger(), nullable=True),
        sa.Column("recipient_kind", sa.String(8), nullable=False),
        sa.Column("recipient_display", sa.String(32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("decline_reason", sa.String(32), nullable=True),
        sa.Column("voucher", sa.String(32), nullable=True),
        sa.Column("memo", sa.String(64), nullable=True),
        sa.Column("commitment_salt", sa.LargeBinary(16), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("created_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("completed_at_ns", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_p2p_transfers"),
        sa.UniqueConstraint("voucher", name="uq_p2p_transfers_voucher"),
    )
    op.create_index("ix_p2p_transfers_user_id_id", "p2p_transfers", ["user_id", "id"])
    op.create_table(
        "limit_usage",
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "day", name="pk_limit_usage"),
    )


def downgrade() -> None:
    op.drop_table("limit_usage")
    op.drop_index("ix_p2p_transfers_user_id_id", table_name="p2p_transfers")
    op.drop_table("p2p_transfers")
