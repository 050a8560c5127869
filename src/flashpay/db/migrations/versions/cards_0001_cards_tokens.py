"""cards: the issuers' card records (card numbers encrypted) and the network's tokens."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "cards_0001"
down_revision = None
branch_labels = ("cards",)
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cards",
        sa.Column("id", ID, primary_key=True),
        sa.Column("issuer_id", sa.BigInteger(), nullable=False),
        sa.Column("pan_key_id", sa.SmallInteger(), nullable=False),
        sa.Column("pan_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("pan_fingerprint", sa.LargeBinary(32), nullable=False),
        sa.Column("pan_first6", sa.String(6), nullable=False),
        sa.Column("pan_last4", sa.String(4), nullable=False),
        sa.Column("pan_length", sa.SmallInteger(), nullable=False),
        sa.Column("card_type", sa.String(8), nullable=False),
        sa.Column("expiry", sa.String(4), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("holder_name", sa.String(64), nullable=False),
        sa.Column("holder_id_fingerprint", sa.LargeBinary(32), nullable=False),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("ledger_account_id", sa.BigInteger(), nullable=False),
        sa.Column("credit_limit", sa.BigInteger(), nullable=False),
        sa.Column("statement_day", sa.SmallInteger(), nullable=True),
        sa.Column("created_at_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cards"),
        sa.UniqueConstraint("pan_fingerprint", name="uq_cards_pan_fingerprint"),
        sa.UniqueConstraint("ledger_account_id", name="uq_cards_ledger_account_id"),
    )
    op.create_table(
        "card_tokens",
        sa.Column("token", sa.String(19), nullable=False),
        sa.Column("card_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("token", name="pk_card_tokens"),
    )
    op.create_index("ix_card_tokens_card_id", "card_tokens", ["card_id"])


def downgrade() -> None:
    op.drop_index("ix_card_tokens_card_id", table_name="card_tokens")
    op.drop_table("card_tokens")
    op.drop_table("cards")
