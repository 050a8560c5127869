"""Tables of ``flashpay.institutions`` (migration ``institutions_0001``)."""

from __future__ import annotations

import sqlalchemy as sa

from flashpay.db import metadata

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

institutions = sa.Table(
    "institutions",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("code", sa.String(16), nullable=False, unique=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("iin", sa.String(8), nullable=False),
    sa.Column("token_bin", sa.String(8), nullable=True),
    sa.Column("created_at_ns", sa.BigInteger, nullable=False),
)

institution_bins = sa.Table(
    "institution_bins",
    metadata,
    sa.Column("prefix", sa.String(8), primary_key=True),
    sa.Column("institution_id", sa.BigInteger, nullable=False),
    sa.Column("card_type", sa.String(8), nullable=False),
)
