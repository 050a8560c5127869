"""wallet: attempt counters of password checks (login, and the password that authorizes a PIN or
limits change) and daily counts of card-binding starts (``flashpay.wallet.throttle``)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "wallet_0003"
down_revision = "wallet_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wallet_attempts",
        sa.Column("scope", sa.String(80), nullable=False),  # phone:<phone> | ip:<address>
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("lockouts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_ns", sa.BigInteger(), nullable=False),
        sa.Column("locked_until_ns", sa.BigInteger(), nullable=False),
        sa.Column("last_failure_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("scope", name="pk_wallet_attempts"),
    )
    op.create_table(
        "wallet_daily_counts",
        sa.Column("scope", sa.String(96), nullable=False),  # card:<fp> | user:<id> | phone:<phone>
        sa.Column("day", sa.String(10), nullable=False),  # Beijing day, YYYY-MM-DD
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "day", name="pk_wallet_daily_counts"),
    )


def downgrade() -> None:
    op.drop_table("wallet_daily_counts")
    op.drop_table("wallet_attempts")
