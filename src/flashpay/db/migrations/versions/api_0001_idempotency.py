"""api: stored responses of POST requests by (caller, Idempotency-Key)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "api_0001"
down_revision = None
branch_labels = ("api",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_idempotency",
        sa.Column("principal", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("content_type", sa.String(100), nullable=True),
        sa.Column("response_body", sa.LargeBinary(), nullable=True),
        sa.Column("created_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("claimed_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("completed_at_ns", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("principal", "idempotency_key", name="pk_api_idempotency"),
    )
    op.create_index("ix_api_idempotency_created_at_ns", "api_idempotency", ["created_at_ns"])


def downgrade() -> None:
    op.drop_index("ix_api_idempotency_created_at_ns", table_name="api_idempotency")
    op.drop_table("api_idempotency")
