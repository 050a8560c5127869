"""Tables of ``flashpay.webhooks`` (migration ``webhooks_0001``).

- ``webhook_cursors``: one row per source the deriver reads (``ledger``: the low-water chain id
  below which every committed chain has been turned into events; ``holds``: the hold deadline up
  to which lapsed holds have). The row is also the deriver's lock: one deriver at a time.
- ``webhook_events``: one row per fact, ``id`` derived from the fact (``evt_…``, unique), ``seq``
  the feed's order (assigned under the deriver's lock, so it commits in order), the body as the
  exact JSON text every delivery sends.
- ``webhook_endpoints``: a merchant's URLs, each with its signing secret and the event types it
  takes; ``status`` enabled | disabled | deleted (a deleted one keeps its delivery log).
- ``webhook_deliveries``: one row per (event, endpoint, round) — round 0 is the fan-out when the
  event was derived, a replay adds round n+1. ``next_attempt_at_ns`` is when it is due,
  ``lease_until_ns`` when a worker's claim on it lapses (a worker killed mid-delivery loses its
  lease and the row is taken again).
- ``webhook_attempts``: one row per HTTP attempt (status code, latency, error), written when the
  attempt starts (``in_flight``) and completed when it ends.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from flashpay.db import metadata
from flashpay.errors import InvariantError

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
URL_CHARS_MAX = 2048
EVENT_ID_CHARS = 32
EVENT_TYPE_CHARS = 32

webhook_cursors = sa.Table(
    "webhook_cursors",
    metadata,
    sa.Column("name", sa.String(16), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("updated_at_ns", sa.BigInteger, nullable=False),
)

webhook_events = sa.Table(
    "webhook_events",
    metadata,
    sa.Column("seq", ID, primary_key=True),
    sa.Column("id", sa.String(EVENT_ID_CHARS), nullable=False, unique=True),
    sa.Column("merchant_id", sa.BigInteger, nullable=False),
    sa.Column("type", sa.String(EVENT_TYPE_CHARS), nullable=False),
    sa.Column("created_at_ns", sa.BigInteger, nullable=False),
    sa.Column("derived_at_ns", sa.BigInteger, nullable=False),
    sa.Column("source", sa.BigInteger, nullable=False),  # the chain id, or the hold's payment id
    sa.Column("body", sa.Text, nullable=False),
    sa.Index("ix_webhook_events_merchant_seq", "merchant_id", "seq"),
)

webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("merchant_id", sa.BigInteger, nullable=False),
    sa.Column("url", sa.String(URL_CHARS_MAX), nullable=False),
    sa.Column("description", sa.String(100), nullable=False),
    sa.Column("event_types", sa.String(400), nullable=False),  # comma-separated, sorted
    sa.Column("secret", sa.String(80), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("created_at_ns", sa.BigInteger, nullable=False),
    sa.Column("updated_at_ns", sa.BigInteger, nullable=False),
    sa.Index("ix_webhook_endpoints_merchant", "merchant_id", "id"),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("event_seq", sa.BigInteger, nullable=False),
    sa.Column("endpoint_id", sa.BigInteger, nullable=False),
    sa.Column("merchant_id", sa.BigInteger, nullable=False),
    sa.Column("round", sa.Integer, nullable=False),
    sa.Column("state", sa.String(10), nullable=False),  # pending | succeeded | failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at_ns", sa.BigInteger, nullable=True),
    sa.Column("lease_until_ns", sa.BigInteger, nullable=True),
    sa.Column("created_at_ns", sa.BigInteger, nullable=False),
    sa.Column("updated_at_ns", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("event_seq", "endpoint_id", "round", name="uq_webhook_deliveries_round"),
    sa.Index("ix_webhook_deliveries_due", "state", "next_attempt_at_ns"),
    sa.Index("ix_webhook_deliveries_merchant", "merchant_id", "id"),
)

webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("delivery_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("n", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("started_at_ns", sa.BigInteger, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("latency_ms", sa.Integer, nullable=True),
    sa.Column("error", sa.String(200), nullable=True),
    sa.Column(
        "outcome", sa.String(12), nullable=False
    ),  # in_flight | succeeded | failed | interrupted
)


def inserted_id(result: sa.CursorResult[Any]) -> int:
    """The id the database gave the row an ``insert`` just wrote."""
    key = result.inserted_primary_key
    if key is None:
        raise InvariantError("an insert of one row has its primary key")
    return int(key[0])
