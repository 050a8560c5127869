"""settlement: merchant payouts — per settled window and merchant, its statement (payments,
refunds, fees), what is carried in and out, and the payout (decision 0021)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "settlement_0003"
down_revision = "settlement_0002"
branch_labels = None
depends_on = None


def _fen(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "settlement_payouts",
        sa.Column("window_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("merchant_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("acquirer", sa.String(16), nullable=False),
        sa.Column("value_date", sa.String(10), nullable=False),
        *(
            _fen(n)
            for n in (
                "payments",
                "payments_fen",
                "refunds",
                "refunds_fen",
                "fees_fen",
                "net_fen",
                "carried_in_fen",
                "payout_fen",
                "carried_out_fen",
            )
        ),
        sa.PrimaryKeyConstraint("window_id", "merchant_id", name="pk_settlement_payouts"),
    )


def downgrade() -> None:
    op.drop_table("settlement_payouts")
