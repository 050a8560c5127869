"""settlement: a position's promotion funding — the discount legs (transfer codes 12 and 13)
that used to show as ``other_fen`` (decision 0021)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "settlement_0002"
down_revision = "settlement_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("settlement_positions") as batch:
        batch.add_column(
            sa.Column("promotion_fen", sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("settlement_positions") as batch:
        batch.drop_column("promotion_fen")
