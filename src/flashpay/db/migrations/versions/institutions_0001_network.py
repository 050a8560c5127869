"""institutions: the network, issuers and acquirers, and the issuers' BIN ranges."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "institutions_0001"
down_revision = None
branch_labels = ("institutions",)
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "institutions",
        sa.Column("id", ID, primary_key=True),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("iin", sa.String(8), nullable=False),
        sa.Column("token_bin", sa.String(8), nullable=True),
        sa.Column("created_at_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_institutions"),
        sa.UniqueConstraint("code", name="uq_institutions_code"),
    )
    op.create_table(
        "institution_bins",
        sa.Column("prefix", sa.String(8), nullable=False),
        sa.Column("institution_id", sa.BigInteger(), nullable=False),
        sa.Column("card_type", sa.String(8), nullable=False),
        sa.PrimaryKeyConstraint("prefix", name="pk_institution_bins"),
    )


def downgrade() -> None:
    op.drop_table("institution_bins")
    op.drop_table("institutions")
