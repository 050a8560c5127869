"""chain: the audit log's leaves, perfect-subtree node hashes, state, checkpoints, cosignatures.

Revision ID: chain_0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "chain_0001"
down_revision = None
branch_labels = ("chain",)
# No depends_on the ledger's branch: the chain tables have no foreign key into it, and with a
# dependency Alembic records only chain_0001 in alembic_version (ledger_0001 is implied), which the
# readiness check and tests/test_skeleton.py read as the ledger head missing.
depends_on = None


def upgrade() -> None:
    # One row per leaf, in log order; the leaf's bytes as flashpay.chain.leaf encodes them.
    op.create_table(
        "chain_leaves",
        sa.Column("leaf_index", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("chain_id", sa.BigInteger, nullable=False, unique=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sqlite_with_rowid=False,
    )
    # Every perfect subtree's hash from level 1 up (level 0 is hashed from chain_leaves.data):
    # node_id = level << 48 | index.
    op.create_table(
        "chain_nodes",
        sa.Column("node_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sqlite_with_rowid=False,
    )
    # The tree size; appenders lock this row, so appends are serialized.
    state = op.create_table(
        "chain_state",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("tree_size", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(state, [{"id": 1, "tree_size": 0}])
    # Checkpoints the log signed (one per tree size: the log never signs two trees of one size).
    op.create_table(
        "chain_checkpoints",
        sa.Column("tree_size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_at_ns", sa.BigInteger, nullable=False),
        sa.Column("final_at_ns", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "chain_cosignatures",
        sa.Column("tree_size", sa.BigInteger, nullable=False),
        sa.Column("witness", sa.String(255), nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("tree_size", "witness", name="pk_chain_cosignatures"),
    )


def downgrade() -> None:
    for table in (
        "chain_cosignatures",
        "chain_checkpoints",
        "chain_state",
        "chain_nodes",
        "chain_leaves",
    ):
        op.drop_table(table)
