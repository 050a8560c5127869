"""The ``notify_dev_outbox`` table (migration ``notify_0001``): the development outbox.

One row per message a development process would have sent by SMS, newest last (``id`` grows).
It is a convenience for people trying flashpay on a laptop, not a record: the outbox keeps at most
``OUTBOX_MESSAGES_MAX`` messages and none older than ``OUTBOX_RETENTION_SECONDS`` (each write
deletes what falls out). A production process never writes it (decision 0015).
"""

from __future__ import annotations

import sqlalchemy as sa

from flashpay.db import metadata

PHONE_CHARS_MAX = 20
PURPOSE_CHARS_MAX = 32
REFERENCE_CHARS_MAX = 64
CODE_CHARS_MAX = 16
TEXT_CHARS_MAX = 480  # three SMS segments of 160 GSM characters

dev_outbox = sa.Table(
    "notify_dev_outbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("created_at_ns", sa.BigInteger, nullable=False),
    sa.Column("phone", sa.String(PHONE_CHARS_MAX), nullable=False),
    sa.Column("purpose", sa.String(PURPOSE_CHARS_MAX), nullable=False),
    sa.Column("reference", sa.String(REFERENCE_CHARS_MAX), nullable=False),
    sa.Column("code", sa.String(CODE_CHARS_MAX), nullable=False),
    sa.Column("text", sa.String(TEXT_CHARS_MAX), nullable=False),
    sa.Index("ix_notify_dev_outbox_phone", "phone", "id"),
)
