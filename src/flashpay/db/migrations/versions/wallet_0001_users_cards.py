"""wallet: users, sessions, bound cards and card-binding attempts."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "wallet_0001"
down_revision = None
branch_labels = ("wallet",)
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "wallet_users",
        sa.Column("id", ID, primary_key=True),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("id_fingerprint", sa.LargeBinary(32), nullable=False),
        sa.Column("password_hash", sa.String(128), nullable=False),
        sa.Column("pin_hash", sa.String(128), nullable=True),
        sa.Column("pin_failures", sa.Integer(), nullable=False),
        sa.Column("pin_locked_until_ns", sa.BigInteger(), nullable=True),
        sa.Column("real_name_verified", sa.Boolean(), nullable=False),
        sa.Column("cards_version", sa.Integer(), nullable=False),
        sa.Column("free_per_payment", sa.BigInteger(), nullable=False),
        sa.Column("qr_daily_limit", sa.BigInteger(), nullable=False),
        sa.Column("created_at_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_wallet_users"),
        sa.UniqueConstraint("phone", name="uq_wallet_users_phone"),
    )
    op.create_table(
        "wallet_sessions",
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_wallet_sessions"),
    )
    op.create_index("ix_wallet_sessions_user_id", "wallet_sessions", ["user_id"])
    op.create_table(
        "wallet_cards",
        sa.Column("id", ID, primary_key=True),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("card_id", sa.BigInteger(), nullable=False),
        sa.Column("token", sa.String(19), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("bound_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("unbound_at_ns", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_wallet_cards"),
        sa.UniqueConstraint("token", name="uq_wallet_cards_token"),
    )
    op.create_index("ix_wallet_cards_user_id", "wallet_cards", ["user_id"])
    op.create_table(
        "wallet_bindings",
        sa.Column("id", ID, primary_key=True),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("card_id", sa.BigInteger(), nullable=False),
        sa.Column("otp_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("created_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_wallet_bindings"),
    )


def downgrade() -> None:
    op.drop_table("wallet_bindings")
    op.drop_index("ix_wallet_cards_user_id", table_name="wallet_cards")
    op.drop_table("wallet_cards")
    op.drop_index("ix_wallet_sessions_user_id", table_name="wallet_sessions")
    op.drop_table("wallet_sessions")
    op.drop_table("wallet_users")
