"""What a merchant reads: its events in feed order, one event, its deliveries with their
attempts; and replaying an event. Every read is filtered by the merchant: another merchant's
event, endpoint or delivery is simply not found (the router answers 404).

The feed's order is ``seq``, assigned under the deriver's lock, so a reader that asks for the
events after the last id it saw never misses one that commits later.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from flashpay.idempotency import IdempotencyTag, once
from flashpay.platform import Platform
from flashpay.webhooks.delivery import replay
from flashpay.webhooks.errors import WebhookError, WebhookRefusal
from flashpay.webhooks.models import (
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
    webhook_events,
)

PAGE_SIZE_MAX = 100
EVENT_ID_PATTERN = re.compile(r"evt_[0-9a-f]{24}")
EFFECT_REPLAY = "webhook_replay"


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    id: str
    type: str
    merchant_id: int
    created_at_ns: int
    body: str  # the exact JSON every delivery sends

    def payload(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass(frozen=True, slots=True)
class Attempt:
    n: int
    started_at_ns: int
    outcome: str
    status_code: int | None
    latency_ms: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    event_id: str
    event_type: str
    endpoint_id: int
    round: int
    state: str
    attempts: tuple[Attempt, ...]
    next_attempt_at_ns: int | None
    created_at_ns: int
    updated_at_ns: int


def check_event_id(text: str) -> str:
    if not EVENT_ID_PATTERN.fullmatch(text):
        raise WebhookError(WebhookRefusal.INVALID_EVENT_ID, "an event id is evt_ and 24 hex digits")
    return text


def _event(row: Any) -> StoredEvent:
    return StoredEvent(int(row.seq), str(row.id), str(row.type), int(row.merchant_id),
                       int(row.created_at_ns), str(row.body))  # fmt: skip


_EVENT_COLUMNS = (
    webhook_events.c.seq, webhook_events.c.id, webhook_events.c.type,
    webhook_events.c.merchant_id, webhook_events.c.created_at_ns, webhook_events.c.body,
)  # fmt: skip


def find_event(connection: sa.Connection, *, merchant_id: int, event_id: str) -> StoredEvent | None:
    ev = webhook_events.c
    row = connection.execute(
        sa.select(*_EVENT_COLUMNS).where(ev.id == event_id, ev.merchant_id == merchant_id)
    ).first()
    return None if row is None else _event(row)


def events_after(
    connection: sa.Connection,
    *,
    merchant_id: int,
    after_seq: int,
    limit: int,
    types: Sequence[str] = (),
) -> list[StoredEvent]:
    """The merchant's events after ``after_seq`` in feed order, at most ``limit``."""
    ev = webhook_events.c
    query = sa.select(*_EVENT_COLUMNS).where(ev.merchant_id == merchant_id, ev.seq > after_seq)
    if types:
        query = query.where(ev.type.in_(sorted(set(types))))
    rows = connection.execute(query.order_by(ev.seq).limit(max(1, min(limit, PAGE_SIZE_MAX))))
    return [_event(r) for r in rows]


def list_events(
    *,
    platform: Platform,
    merchant_id: int,
    after: str | None,
    limit: int,
    types: Sequence[str] = (),
) -> list[StoredEvent] | None:
    """A page of the merchant's events after the event ``after`` (from the first when
    ``None``); ``None`` when ``after`` is not one of its events."""
    with platform.engine.connect() as connection:
        after_seq = 0
        if after is not None:
            found = find_event(connection, merchant_id=merchant_id, event_id=check_event_id(after))
            if found is None:
                return None
            after_seq = found.seq
        return events_after(
            connection, merchant_id=merchant_id, after_seq=after_seq, limit=limit, types=types
        )


def get_event(*, platform: Platform, merchant_id: int, event_id: str) -> StoredEvent | None:
    with platform.engine.connect() as connection:
        return find_event(connection, merchant_id=merchant_id, event_id=check_event_id(event_id))


def list_deliveries(
    *,
    platform: Platform,
    merchant_id: int,
    event_id: str | None = None,
    endpoint_id: int | None = None,
    before_id: int | None = None,
    limit: int = PAGE_SIZE_MAX,
) -> list[Delivery]:
    """The merchant's deliveries, newest first, with every attempt."""
    d, ev = webhook_deliveries.c, webhook_events.c
    query = (
        sa.select(d.id, d.endpoint_id, d.round, d.state, d.next_attempt_at_ns, d.created_at_ns,
                  d.updated_at_ns, ev.id.label("event_id"), ev.type)
        .join(webhook_events, ev.seq == d.event_seq)
        .where(d.merchant_id == merchant_id)
    )  # fmt: skip
    if event_id is not None:
        query = query.where(ev.id == check_event_id(event_id))
    if endpoint_id is not None:
        query = query.where(d.endpoint_id == endpoint_id)
    if before_id is not None:
        query = query.where(d.id < before_id)
    query = query.order_by(d.id.desc()).limit(max(1, min(limit, PAGE_SIZE_MAX)))
    with platform.engine.connect() as connection:
        rows = connection.execute(query).all()
        return _with_attempts(connection, rows)


def get_delivery(*, platform: Platform, merchant_id: int, delivery_id: int) -> Delivery | None:
    d, ev = webhook_deliveries.c, webhook_events.c
    query = (
        sa.select(d.id, d.endpoint_id, d.round, d.state, d.next_attempt_at_ns, d.created_at_ns,
                  d.updated_at_ns, ev.id.label("event_id"), ev.type)
        .join(webhook_events, ev.seq == d.event_seq)
        .where(d.merchant_id == merchant_id, d.id == delivery_id)
    )  # fmt: skip
    with platform.engine.connect() as connection:
        found = _with_attempts(connection, connection.execute(query).all())
    return found[0] if found else None


def _with_attempts(connection: sa.Connection, rows: Sequence[Any]) -> list[Delivery]:
    if not rows:
        return []
    a = webhook_attempts.c
    attempts: dict[int, list[Attempt]] = {}
    for r in connection.execute(
        sa.select(webhook_attempts)
        .where(a.delivery_id.in_([int(r.id) for r in rows]))
        .order_by(a.delivery_id, a.n)
    ):
        attempts.setdefault(int(r.delivery_id), []).append(
            Attempt(int(r.n), int(r.started_at_ns), str(r.outcome), r.status_code, r.latency_ms,
                    r.error)
        )  # fmt: skip
    return [
        Delivery(int(r.id), str(r.event_id), str(r.type), int(r.endpoint_id), int(r.round),
                 str(r.state), tuple(attempts.get(int(r.id), ())), r.next_attempt_at_ns,
                 int(r.created_at_ns), int(r.updated_at_ns))
        for r in rows
    ]  # fmt: skip


class _NoSuchTargetError(Exception):
    """Rolls a replay back: no such event or endpoint of this merchant (nothing is bound)."""


def replay_event(
    *,
    platform: Platform,
    merchant_id: int,
    event_id: str,
    endpoint_id: int | None = None,
    idempotency: IdempotencyTag | None = None,
) -> list[Delivery] | None:
    """Send the event again: a new round of deliveries, due now, to ``endpoint_id`` or to every
    enabled endpoint of the merchant that takes its type; ``None`` when the merchant has no such
    event (or no such endpoint). A retry with the same Idempotency-Key answers the same round."""
    check_event_id(event_id)
    now = platform.clock.now_ns()
    e = webhook_endpoints.c

    def create(connection: sa.Connection) -> tuple[int, list[int] | None]:
        event = find_event(connection, merchant_id=merchant_id, event_id=event_id)
        if event is None:
            raise _NoSuchTargetError
        query = sa.select(e.id, e.event_types, e.status).where(e.merchant_id == merchant_id)
        if endpoint_id is not None:
            query = query.where(e.id == endpoint_id, e.status != "deleted")
        else:
            query = query.where(e.status == "enabled")
        targets = [
            int(r.id)
            for r in connection.execute(query)
            if endpoint_id is not None or event.type in str(r.event_types).split(",")
        ]
        if endpoint_id is not None and not targets:
            raise _NoSuchTargetError
        ids = replay(connection, event_seq=event.seq, merchant_id=merchant_id,
                     endpoint_ids=targets, now_ns=now)  # fmt: skip
        return (min(ids) if ids else 0), ids

    def load(connection: sa.Connection, first_id: int) -> list[int] | None:
        d = webhook_deliveries.c
        first = connection.execute(sa.select(d.event_seq, d.round).where(d.id == first_id)).first()
        if first is None:
            return []
        return [
            int(r[0])
            for r in connection.execute(
                sa.select(d.id).where(d.event_seq == first.event_seq, d.id >= first_id,
                                      d.created_at_ns == sa.select(d.created_at_ns)
                                      .where(d.id == first_id).scalar_subquery())
            )
        ]  # fmt: skip

    try:
        ids = once(platform.engine, idempotency, kind=EFFECT_REPLAY,
                   now_ns=platform.clock.now_ns, create=create, load=load)  # fmt: skip
    except _NoSuchTargetError:
        return None
    if ids is None:
        return None
    wanted = set(ids)
    found = list_deliveries(platform=platform, merchant_id=merchant_id, event_id=event_id)
    return sorted((d for d in found if d.id in wanted), key=lambda x: x.id)
