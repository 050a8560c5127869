"""settlement: windows, positions, cleared account moves, member files
(``flashpay.settlement.models``).

Revision ID: settlement_0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "settlement_0001"
down_revision = None
branch_labels = ("settlement",)
depends_on = None


def _fen(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "settlement_windows",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("start_ns", sa.BigInteger(), nullable=False),
        sa.Column("end_ns", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("closed_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("settled_at_ns", sa.BigInteger(), nullable=True),
        sa.Column("results_digest", sa.String(64), nullable=False),
        sa.Column("transactions", sa.BigInteger(), nullable=False),
        sa.Column("settlement_chain_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_settlement_windows"),
        sa.UniqueConstraint("start_ns", name="uq_settlement_windows_start"),
        sa.UniqueConstraint("end_ns", name="uq_settlement_windows_end"),
    )
    op.create_table(
        "settlement_positions",
        sa.Column("window_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("member", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        *(
            _fen(n)
            for n in (
                "owes_fen",
                "owed_fen",
                "refunds_fen",
                "interchange_fen",
                "network_fee_fen",
                "mdr_fen",
                "other_fen",
                "net_fen",
                "books_net_fen",
                "transactions",
            )
        ),
        sa.PrimaryKeyConstraint("window_id", "member", name="pk_settlement_positions"),
    )
    op.create_table(
        "settlement_moves",
        sa.Column("window_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("member", sa.String(16), nullable=False),
        _fen("net_debit_fen"),
        sa.PrimaryKeyConstraint("window_id", "account_id", name="pk_settlement_moves"),
    )
    op.create_table(
        "settlement_files",
        sa.Column("window_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("member", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        _fen("bytes"),
        sa.PrimaryKeyConstraint("window_id", "member", "kind", name="pk_settlement_files"),
    )


def downgrade() -> None:
    for table in (
        "settlement_files",
        "settlement_moves",
        "settlement_positions",
        "settlement_windows",
    ):
        op.drop_table(table)
