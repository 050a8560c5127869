"""transit: operators, rider credentials, uploaded taps, trips, deferred debits, the deny list
and its versions (``flashpay.transit.models``)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "transit_0001"
down_revision = None
branch_labels = ("transit",)
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "transit_operators",
        sa.Column("network", sa.String(10), primary_key=True),
        sa.Column("merchant_id", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "transit_credentials",
        sa.Column("serial", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("token", sa.String(19), nullable=False),
        sa.Column("card_id", sa.BigInteger(), nullable=False),
        sa.Column("device_public_key", sa.LargeBinary(32), nullable=False),
        sa.Column("ride_credit_limit_minor", sa.BigInteger(), nullable=False),
        sa.Column("concession", sa.String(20), nullable=True),
        sa.Column("issued_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_transit_credentials_token", "transit_credentials", ["token"])
    op.create_table(
        "transit_taps",
        sa.Column("gate_id", sa.String(32), primary_key=True),
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("token", sa.String(19), nullable=False),
        sa.Column("station", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("at_ns", sa.BigInteger(), nullable=False),
        sa.Column("corrected_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.LargeBinary(16), nullable=False),
        sa.Column("deny_version", sa.BigInteger(), nullable=False),
        sa.Column("uploaded_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("trip_id", sa.BigInteger(), nullable=True),
        sa.Column("set_aside", sa.String(10), nullable=True),
    )
    op.create_index("ix_transit_taps_open", "transit_taps", ["trip_id", "set_aside"])
    op.create_index("ix_transit_taps_digest", "transit_taps", ["digest"])
    op.create_table(
        "transit_trips",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("token", sa.String(19), nullable=False),
        sa.Column("network", sa.String(10), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("from_station", sa.String(16), nullable=True),
        sa.Column("to_station", sa.String(16), nullable=True),
        sa.Column("started_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("base_minor", sa.BigInteger(), nullable=False),
        sa.Column("transfer_discount_minor", sa.BigInteger(), nullable=False),
        sa.Column("concession_discount_minor", sa.BigInteger(), nullable=False),
        sa.Column("cap_discount_minor", sa.BigInteger(), nullable=False),
        sa.Column("fare_minor", sa.BigInteger(), nullable=False),
        sa.Column("disputed", sa.Boolean(), nullable=False),
        sa.Column("debit_id", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_transit_trips_token", "transit_trips", ["token"])
    op.create_index("ix_transit_trips_debit_id", "transit_trips", ["debit_id"])
    op.create_table(
        "transit_debits",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("token", sa.String(19), nullable=False),
        sa.Column("card_id", sa.BigInteger(), nullable=False),
        sa.Column("merchant_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False, default=0),
        sa.Column("salt", sa.LargeBinary(16), nullable=False),
        sa.Column("deny_version", sa.BigInteger(), nullable=False),
        sa.Column("created_at_ns", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_transit_debits_token", "transit_debits", ["token"])
    op.create_table(
        "transit_deny",
        sa.Column("token", sa.String(19), primary_key=True),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("since_ns", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "transit_deny_versions",
        sa.Column("version", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("digest", sa.LargeBinary(32), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("created_at_ns", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("transit_deny_versions")
    op.drop_table("transit_deny")
    op.drop_table("transit_debits")
    op.drop_table("transit_trips")
    op.drop_table("transit_taps")
    op.drop_table("transit_credentials")
    op.drop_table("transit_operators")
