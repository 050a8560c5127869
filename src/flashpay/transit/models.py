"""Tables of ``flashpay.transit`` (migration ``transit_0001``).

- ``transit_operators``: which merchant (bus, subway scene) operates each network; its acquirer
  is paid by the deferred debits.
- ``transit_credentials``: every rider credential the network signed (serial, token, device
  key, ride-credit limit, validity, revocation); the credential bytes themselves are not kept.
- ``transit_taps``: every tap a gate uploaded, primary key ``(gate_id, seq)``: a batch sent
  twice inserts nothing the second time. ``at_ns`` is the gate's clock, ``corrected_at_ns`` the
  network's estimate (the gate's offset at upload removed); ``trip_id`` / ``set_aside`` once
  matched.
- ``transit_trips``: priced trips, with each discount beside the fare, the debit that paid it.
- ``transit_debits``: one deferred debit per rider, China day and operator: posted, failed (the
  token is then deny-listed) or paid later.
- ``transit_deny`` and ``transit_deny_versions``: the deny list now, and every version's digest
  (a hash chain: each digest covers the one before), which gates report with their taps.
"""

from __future__ import annotations

import sqlalchemy as sa

from flashpay.db import metadata

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

transit_operators = sa.Table(
    "transit_operators",
    metadata,
    sa.Column("network", sa.String(10), primary_key=True),
    sa.Column("merchant_id", sa.BigInteger(), nullable=False),
)

transit_credentials = sa.Table(
    "transit_credentials",
    metadata,
    sa.Column("serial", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("token", sa.String(19), nullable=False, index=True),
    sa.Column("card_id", sa.BigInteger(), nullable=False),
    sa.Column("device_public_key", sa.LargeBinary(32), nullable=False),
    sa.Column("ride_credit_limit_minor", sa.BigInteger(), nullable=False),
    sa.Column("concession", sa.String(20), nullable=True),
    sa.Column("issued_at_ns", sa.BigInteger(), nullable=False),
    sa.Column("expires_at_ns", sa.BigInteger(), nullable=False),
    sa.Column("revoked", sa.Boolean(), nullable=False, default=False),
)

transit_taps = sa.Table(
    "transit_taps",
    metadata,
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
    sa.Index("ix_transit_taps_open", "trip_id", "set_aside"),
    sa.Index("ix_transit_taps_digest", "digest"),
)

transit_trips = sa.Table(
    "transit_trips",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("token", sa.String(19), nullable=False, index=True),
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
    sa.Column("disputed", sa.Boolean(), nullable=False, default=False),
    sa.Column("debit_id", sa.BigInteger(), nullable=True, index=True),
)

transit_debits = sa.Table(
    "transit_debits",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("token", sa.String(19), nullable=False, index=True),
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

transit_deny = sa.Table(
    "transit_deny",
    metadata,
    sa.Column("token", sa.String(19), primary_key=True),
    sa.Column("reason", sa.String(20), nullable=False),
    sa.Column("since_ns", sa.BigInteger(), nullable=False),
)

transit_deny_versions = sa.Table(
    "transit_deny_versions",
    metadata,
    sa.Column("version", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("digest", sa.LargeBinary(32), nullable=False),
    sa.Column("tokens", sa.Integer(), nullable=False),
    sa.Column("created_at_ns", sa.BigInteger(), nullable=False),
)
