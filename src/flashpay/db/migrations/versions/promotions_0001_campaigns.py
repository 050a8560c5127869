"""promotions: campaigns, their budget counters, usage per user key / day and per card,
redemptions, and coupons (``flashpay.promotions.models``)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "promotions_0001"
down_revision = None
branch_labels = ("promotions",)
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "promo_campaigns",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("funder_kind", sa.String(10), nullable=False),
        sa.Column("funder_id", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("starts_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("ends_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("stacking", sa.String(10), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("created_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_promo_campaigns"),
    )
    op.create_index("ix_promo_campaigns_state", "promo_campaigns", ["state", "ends_at_ns"])
    op.create_index("ix_promo_campaigns_funder", "promo_campaigns", ["funder_kind", "funder_id"])
    op.create_table(
        "promo_budgets",
        sa.Column("campaign_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("money_minor", sa.BigInteger(), nullable=True),
        sa.Column("uses_max", sa.BigInteger(), nullable=True),
        sa.Column("spent_minor", sa.BigInteger(), nullable=False),
        sa.Column("uses", sa.BigInteger(), nullable=False),
        sa.Column("smallest_discount_minor", sa.BigInteger(), nullable=False),
        sa.Column("coupons_max", sa.BigInteger(), nullable=True),
        sa.Column("coupons_issued", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", name="pk_promo_budgets"),
        sa.CheckConstraint(
            "money_minor IS NULL OR (spent_minor >= 0 AND spent_minor <= money_minor)",
            name="ck_promo_budgets_money",
        ),
        sa.CheckConstraint(
            "uses_max IS NULL OR (uses >= 0 AND uses <= uses_max)", name="ck_promo_budgets_uses"
        ),
        sa.CheckConstraint(
            "coupons_max IS NULL OR coupons_issued <= coupons_max",
            name="ck_promo_budgets_coupons",
        ),
    )
    op.create_table(
        "promo_user_usage",
        sa.Column("campaign_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("user_key", sa.String(96), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "user_key", "day", name="pk_promo_user_usage"),
    )
    op.create_table(
        "promo_card_usage",
        sa.Column("campaign_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("card_fingerprint", sa.String(96), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "card_fingerprint", name="pk_promo_card_usage"),
    )
    op.create_table(
        "promo_redemptions",
        sa.Column("id", ID, primary_key=True),
        sa.Column("payment_ref", sa.String(64), nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("funder_kind", sa.String(10), nullable=False),
        sa.Column("funder_id", sa.BigInteger(), nullable=False),
        sa.Column("discount_minor", sa.BigInteger(), nullable=False),
        sa.Column("coupon_id", sa.BigInteger(), nullable=True),
        sa.Column("user_keys", sa.Text(), nullable=False),
        sa.Column("card_fingerprint", sa.String(96), nullable=True),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("scene", sa.String(20), nullable=False),
        sa.Column("issuer_id", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("taken_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("given_back_at_ns", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_promo_redemptions"),
        sa.UniqueConstraint("payment_ref", "campaign_id", name="uq_promo_redemptions_payment_ref"),
    )
    op.create_index("ix_promo_redemptions_campaign_id", "promo_redemptions", ["campaign_id"])
    op.create_table(
        "promo_coupons",
        sa.Column("id", ID, primary_key=True),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("owner_key", sa.String(96), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("issued_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("payment_ref", sa.String(64), nullable=True),
        sa.Column("redeemed_at_ns", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_promo_coupons"),
        sa.UniqueConstraint("campaign_id", "owner_key", name="uq_promo_coupons_campaign_id"),
    )
    op.create_index("ix_promo_coupons_owner_key", "promo_coupons", ["owner_key", "state"])


def downgrade() -> None:
    op.drop_index("ix_promo_coupons_owner_key", table_name="promo_coupons")
    op.drop_table("promo_coupons")
    op.drop_index("ix_promo_redemptions_campaign_id", table_name="promo_redemptions")
    op.drop_table("promo_redemptions")
    op.drop_table("promo_card_usage")
    op.drop_table("promo_user_usage")
    op.drop_table("promo_budgets")
    op.drop_index("ix_promo_campaigns_funder", table_name="promo_campaigns")
    op.drop_index("ix_promo_campaigns_state", table_name="promo_campaigns")
    op.drop_table("promo_campaigns")
