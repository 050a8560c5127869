"""auth: API keys of institutions and merchants (only a SHA-256 of each key is stored)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "auth_0001"
down_revision = None
branch_labels = ("auth",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auth_api_keys",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("key_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("key_prefix", sa.String(12), nullable=False),
        sa.Column("principal_kind", sa.String(16), nullable=False),
        sa.Column("principal_id", sa.BigInteger(), nullable=False),
        sa.Column("network_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at_ns", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_auth_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_auth_api_keys_key_hash"),
    )
    op.create_index(
        "ix_auth_api_keys_principal", "auth_api_keys", ["principal_kind", "principal_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_auth_api_keys_principal", table_name="auth_api_keys")
    op.drop_table("auth_api_keys")
