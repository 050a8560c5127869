"""promotions index: the campaigns that can apply per scene, merchant and city (decision 0020),
filled for the campaigns that exist already (``flashpay.promotions.index.index_values``).

Its own branch (``promotions_index``) so that it cannot collide with another migration of the
``promotions`` branch. It does not depend on that branch (a dependency would hide
``promotions_0001`` from the database's heads): on a fresh database there are no campaigns to
index yet, and on an existing one the campaigns table is there to read.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "promotions_index_0001"
down_revision = None
branch_labels = ("promotions_index",)
depends_on = None


def upgrade() -> None:
    index = op.create_table(
        "promo_campaign_index",
        sa.Column("dimension", sa.String(8), nullable=False),
        sa.Column("value", sa.String(40), nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint(
            "dimension", "value", "campaign_id", name="pk_promo_campaign_index"
        ),
    )
    from flashpay.promotions.definition import parse_campaign
    from flashpay.promotions.index import index_values

    connection = op.get_bind()
    if not sa.inspect(connection).has_table("promo_campaigns"):
        return
    campaigns = sa.table("promo_campaigns", sa.column("id"), sa.column("definition"))
    rows = []
    for row in connection.execute(sa.select(campaigns.c.id, campaigns.c.definition)):
        spec = parse_campaign(json.loads(row.definition))
        rows += [
            {"dimension": d, "value": v, "campaign_id": int(row.id)} for d, v in index_values(spec)
        ]
    if rows:
        op.bulk_insert(index, rows)


def downgrade() -> None:
    op.drop_table("promo_campaign_index")
