"""notify: the development outbox, the messages a development process would have sent by SMS
(kept short; never written in production — decision 0015)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "notify_0001"
down_revision = None
branch_labels = ("notify",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notify_dev_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("created_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("reference", sa.String(64), nullable=False),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("text", sa.String(480), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notify_dev_outbox"),
    )
    op.create_index("ix_notify_dev_outbox_phone", "notify_dev_outbox", ["phone", "id"])


def downgrade() -> None:
    op.drop_index("ix_notify_dev_outbox_phone", table_name="notify_dev_outbox")
    op.drop_table("notify_dev_outbox")
