"""The development outbox: one-time codes a person can read, from any worker or the CLI.

``OutboxNotifier.send`` writes the message to ``notify_dev_outbox`` (``flashpay.notify.models``)
and trims the table in the same transaction: at most ``OUTBOX_MESSAGES_MAX`` messages, none older
than ``OUTBOX_RETENTION_SECONDS``. ``list_messages`` reads the newest first, for ``flashpay dev
messages`` and ``GET /dev/messages``. The table lives in the platform's database because
``flashpay serve`` runs its workers as separate processes: a message sent by one worker must be
readable from another and from a terminal.

This is for development only (decision 0015): the codes it holds are secrets, so a production
process never selects it (``flashpay.notify.environment``) and never mounts the page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flashpay.clock import NS_PER_SECOND, Clock
from flashpay.errors import invariant
from flashpay.notify import Message, mask_phone
from flashpay.notify.models import (
    CODE_CHARS_MAX,
    PHONE_CHARS_MAX,
    PURPOSE_CHARS_MAX,
    REFERENCE_CHARS_MAX,
    TEXT_CHARS_MAX,
    dev_outbox,
)

logger = logging.getLogger("flashpay.notify")

OUTBOX_MESSAGES_MAX = 1_000  # messages kept; each write deletes older ones
OUTBOX_RETENTION_SECONDS = 24 * 3600  # a one-time code is valid 5 minutes; a day is plenty
LIST_LIMIT_DEFAULT = 20
LIST_LIMIT_MAX = 200

_INSERT = dev_outbox.insert().returning(dev_outbox.c.id)
_TRIM = dev_outbox.delete().where(
    sa.or_(
        dev_outbox.c.id < sa.bindparam("b_oldest_kept_id"),
        dev_outbox.c.created_at_ns < sa.bindparam("b_cutoff_ns"),
    )
)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    id: int
    sent_at_ns: int
    phone: str
    purpose: str
    reference: str
    code: str
    text: str


class OutboxNotifier:
    """The development notifier: each message becomes a row of the development outbox."""

    def __init__(self, *, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def send(self, message: Message) -> None:
        invariant(len(message.phone) <= PHONE_CHARS_MAX, "outbox: phone too long")
        invariant(len(message.purpose) <= PURPOSE_CHARS_MAX, "outbox: purpose too long")
        invariant(len(message.reference) <= REFERENCE_CHARS_MAX, "outbox: reference too long")
        invariant(len(message.code) <= CODE_CHARS_MAX, "outbox: code too long")
        invariant(len(message.text) <= TEXT_CHARS_MAX, "outbox: text too long")
        now_ns = self._clock.now_ns()
        with self._engine.begin() as connection:
            message_id = connection.execute(
                _INSERT,
                {
                    "created_at_ns": now_ns,
                    "phone": message.phone,
                    "purpose": message.purpose,
                    "reference": message.reference,
                    "code": message.code,
                    "text": message.text,
                },
            ).scalar_one()
            connection.execute(
                _TRIM,
                {
                    "b_oldest_kept_id": int(message_id) - OUTBOX_MESSAGES_MAX + 1,
                    "b_cutoff_ns": now_ns - OUTBOX_RETENTION_SECONDS * NS_PER_SECOND,
                },
            )
        # No code in the log: the outbox is where a person reads it.
        logger.info(
            "development outbox: message %s to %s (%s %s); read it with `flashpay dev messages` "
            "or GET /dev/messages",
            message_id,
            mask_phone(message.phone),
            message.purpose,
            message.reference,
        )


def list_messages(
    *, engine: Engine, phone: str | None = None, limit: int = LIST_LIMIT_DEFAULT
) -> list[OutboxMessage]:
    """The newest ``limit`` messages of the outbox (to ``phone`` only, if given), newest first."""
    if not 1 <= limit <= LIST_LIMIT_MAX:
        raise ValueError(f"limit must be 1..{LIST_LIMIT_MAX}")
    query = sa.select(dev_outbox).order_by(dev_outbox.c.id.desc()).limit(limit)
    if phone is not None:
        query = query.where(dev_outbox.c.phone == phone)
    with engine.connect() as connection:
        return [
            OutboxMessage(
                id=int(row.id),
                sent_at_ns=int(row.created_at_ns),
                phone=str(row.phone),
                purpose=str(row.purpose),
                reference=str(row.reference),
                code=str(row.code),
                text=str(row.text),
            )
            for row in connection.execute(query)
        ]
