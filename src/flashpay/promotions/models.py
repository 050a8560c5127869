"""Tables of ``flashpay.promotions`` (migration ``promotions_0001``).

- ``promo_campaigns``: one row per campaign; the checked definition as canonical JSON
  (``definition.to_definition``), and beside it the columns that are queried (state, funder,
  period, the scene list's first filter).
- ``promo_budgets``: the counters every payment takes from, one row per campaign, with the
  budget's limits beside what is spent, so a take is one conditional UPDATE of one row. CHECK
  constraints restate the limit: if the code ever tried to overspend, the database would refuse.
- ``promo_user_usage``: uses per (campaign, user key, China day); the day ``"total"`` row counts
  the whole campaign (a cap on a sum of rows could not be taken by one conditional UPDATE).
- ``promo_card_usage``: uses per (campaign, card fingerprint).
- ``promo_redemptions``: one row per benefit given to a payment (unique per payment and
  campaign), enough to give it all back and to report by day, scene and issuing bank.
- ``promo_coupons``: single-use coupons, one per user key and campaign.
"""

from __future__ import annotations

import sqlalchemy as sa

from flashpay.db import metadata
from flashpay.promotions.context import PAYMENT_REF_CHARS_MAX, USER_KEY_CHARS_MAX

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
USER_KEY_CHARS = USER_KEY_CHARS_MAX
PAYMENT_REF_CHARS = PAYMENT_REF_CHARS_MAX
TOTAL_DAY = "total"

promo_campaigns = sa.Table(
    "promo_campaigns",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(80), nullable=False),
    sa.Column("funder_kind", sa.String(10), nullable=False),
    sa.Column("funder_id", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("starts_at_ns", sa.BigInteger, nullable=False),
    sa.Column("ends_at_ns", sa.BigInteger, nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("stacking", sa.String(10), nullable=False),
    sa.Column("definition", sa.Text, nullable=False),
    sa.Column("created_at_ns", sa.BigInteger, nullable=False),
    sa.Column("updated_at_ns", sa.BigInteger, nullable=False),
    sa.Index("ix_promo_campaigns_state", "state", "ends_at_ns"),
    sa.Index("ix_promo_campaigns_funder", "funder_kind", "funder_id"),
)

promo_budgets = sa.Table(
    "promo_budgets",
    metadata,
    sa.Column("campaign_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("money_minor", sa.BigInteger, nullable=True),
    sa.Column("uses_max", sa.BigInteger, nullable=True),
    sa.Column("spent_minor", sa.BigInteger, nullable=False),
    sa.Column("uses", sa.BigInteger, nullable=False),
    sa.Column("smallest_discount_minor", sa.BigInteger, nullable=False),
    sa.Column("coupons_max", sa.BigInteger, nullable=True),
    sa.Column("coupons_issued", sa.BigInteger, nullable=False),
    sa.CheckConstraint(
        "money_minor IS NULL OR (spent_minor >= 0 AND spent_minor <= money_minor)", name="money"
    ),
    sa.CheckConstraint("uses_max IS NULL OR (uses >= 0 AND uses <= uses_max)", name="uses"),
    sa.CheckConstraint("coupons_max IS NULL OR coupons_issued <= coupons_max", name="coupons"),
)

promo_user_usage = sa.Table(
    "promo_user_usage",
    metadata,
    sa.Column("campaign_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("user_key", sa.String(USER_KEY_CHARS), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),  # YYYY-MM-DD (China) or "total"
    sa.Column("uses", sa.Integer, nullable=False),
)

promo_card_usage = sa.Table(
    "promo_card_usage",
    metadata,
    sa.Column("campaign_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("card_fingerprint", sa.String(USER_KEY_CHARS), primary_key=True),
    sa.Column("uses", sa.Integer, nullable=False),
)

promo_redemptions = sa.Table(
    "promo_redemptions",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("payment_ref", sa.String(PAYMENT_REF_CHARS), nullable=False),
    sa.Column("campaign_id", sa.BigInteger, nullable=False),
    sa.Column("funder_kind", sa.String(10), nullable=False),
    sa.Column("funder_id", sa.BigInteger, nullable=False),
    sa.Column("discount_minor", sa.BigInteger, nullable=False),
    sa.Column("coupon_id", sa.BigInteger, nullable=True),
    sa.Column("user_keys", sa.Text, nullable=False),  # JSON list, the keys the uses counted on
    sa.Column("card_fingerprint", sa.String(USER_KEY_CHARS), nullable=True),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),  # the payment's full amount
    sa.Column("scene", sa.String(20), nullable=False),
    sa.Column("issuer_id", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(12), nullable=False),  # taken | given_back
    sa.Column("taken_at_ns", sa.BigInteger, nullable=False),
    sa.Column("given_back_at_ns", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("payment_ref", "campaign_id", name="uq_promo_redemptions_payment_ref"),
    sa.Index("ix_promo_redemptions_campaign_id", "campaign_id"),
)

promo_coupons = sa.Table(
    "promo_coupons",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("campaign_id", sa.BigInteger, nullable=False),
    sa.Column("owner_key", sa.String(USER_KEY_CHARS), nullable=False),
    sa.Column("state", sa.String(10), nullable=False),  # issued | redeemed
    sa.Column("issued_at_ns", sa.BigInteger, nullable=False),
    sa.Column("expires_at_ns", sa.BigInteger, nullable=False),
    sa.Column("payment_ref", sa.String(PAYMENT_REF_CHARS), nullable=True),
    sa.Column("redeemed_at_ns", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("campaign_id", "owner_key", name="uq_promo_coupons_campaign_id"),
    sa.Index("ix_promo_coupons_owner_key", "owner_key", "state"),
)

# The inquiry's index (migration ``promotions_index_0001``, decision 0020): one row per campaign
# and value of each indexed dimension (``scene``, ``merchant``, ``city``) that the campaign can
# apply to, ``"*"`` when the dimension is not restricted. Written with the campaign, in the same
# transaction; never updated (a definition never changes).
promo_campaign_index = sa.Table(
    "promo_campaign_index",
    metadata,
    sa.Column("dimension", sa.String(8), primary_key=True),
    sa.Column("value", sa.String(40), primary_key=True),
    sa.Column("campaign_id", sa.BigInteger, primary_key=True, autoincrement=False),
)
