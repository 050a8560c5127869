"""wallet: how each card binding came about — the user in the app with the issuer's one-time code
(``app``), or the issuer enrolling its cardholder's card (``issuer``)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "wallet_0002"
down_revision = "wallet_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("wallet_bindings") as batch:
        batch.add_column(
            sa.Column("channel", sa.String(8), nullable=False, server_default="app"),
        )


def downgrade() -> None:
    with op.batch_alter_table("wallet_bindings") as batch:
        batch.drop_column("channel")
