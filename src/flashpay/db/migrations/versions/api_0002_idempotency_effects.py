"""api: the effect each Idempotency-Key's first request created, bound in the effect's own
transaction (decision 0013), so a retry after a crash answers from it instead of repeating it."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "api_0002"
down_revision = "api_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_idempotency_effects",
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("effect_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "idempotency_key", name="pk_api_idempotency_effects"),
    )
    op.create_index(
        "ix_api_idempotency_effects_created_at_ns", "api_idempotency_effects", ["created_at_ns"]
    )


def downgrade() -> None:
    op.drop_index("ix_api_idempotency_effects_created_at_ns", table_name="api_idempotency_effects")
    op.drop_table("api_idempotency_effects")
