"""A merchant's webhook endpoints: register (idempotent), list, change, rotate the secret,
delete.

An endpoint is a URL, the event types it takes and a signing secret (``whsec_`` and 43
URL-safe characters, 256 random bits). The secret is shown once — in the answer that registers
the endpoint or rotates it — and kept in the row because the worker needs it to sign (an HMAC
key cannot be stored as a hash). A registration retried with the same Idempotency-Key answers
the same endpoint with a new secret (the first answer, which held the secret, was never stored),
as a retried merchant onboarding answers a new API key. Deleting an endpoint keeps its row and
its delivery log and cancels its pending deliveries. A disabled endpoint is not sent the events
of its time off (a replay sends any of them), and what was pending when it was disabled waits
until it is enabled again.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from flashpay.idempotency import IdempotencyTag, once
from flashpay.platform import Platform
from flashpay.webhooks.errors import WebhookError, WebhookRefusal
from flashpay.webhooks.events import ALL_EVENT_TYPES, EventType
from flashpay.webhooks.models import (
    URL_CHARS_MAX,
    inserted_id,
    webhook_deliveries,
    webhook_endpoints,
)

ENDPOINTS_PER_MERCHANT_MAX = 16
DESCRIPTION_CHARS_MAX = 100
SECRET_PREFIX = "whsec_"
EFFECT_ENDPOINT = "webhook_endpoint"
_PRINTABLE = set(string.printable) - set("\t\n\r\x0b\x0c")


class EndpointStatus(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: int
    merchant_id: int
    url: str
    description: str
    event_types: tuple[EventType, ...]
    status: EndpointStatus
    secret_hint: str  # the secret's first characters, to tell two apart
    created_at_ns: int
    updated_at_ns: int


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def check_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL with a host, no user info and no fragment, of at
    most ``URL_CHARS_MAX`` characters; else a named refusal."""
    if len(url) > URL_CHARS_MAX:
        raise WebhookError(
            WebhookRefusal.ENDPOINT_URL_TOO_LONG,
            f"an endpoint URL is at most {URL_CHARS_MAX} characters",
            details={"max_chars": URL_CHARS_MAX},
        )
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port that is not a number in range
    except ValueError:
        parts, port = None, None
    ok = (
        parts is not None
        and parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and parts.username is None
        and not parts.fragment
        and (port is None or port > 0)
        and all(c in _PRINTABLE and c != " " for c in url)
    )
    if not ok:
        raise WebhookError(
            WebhookRefusal.INVALID_ENDPOINT_URL,
            "an endpoint URL is an absolute http:// or https:// URL with a host, "
            "without user info or fragment",
        )
    return url


def check_event_types(types: Sequence[str] | None) -> tuple[EventType, ...]:
    """The event types named (all when ``None``), sorted; a refusal for an unknown or empty list."""
    if types is None:
        return tuple(sorted(ALL_EVENT_TYPES))
    known = {t.value: t for t in EventType}
    unknown = sorted({t for t in types if t not in known})
    if not types or unknown:
        raise WebhookError(
            WebhookRefusal.INVALID_EVENT_TYPES,
            "event_types is a non-empty list of types flashpay sends",
            details={"unknown": unknown, "known": sorted(known)},
        )
    return tuple(sorted({known[t] for t in types}))


def check_description(text: str) -> str:
    if len(text) > DESCRIPTION_CHARS_MAX or any(not c.isprintable() for c in text):
        raise WebhookError(
            WebhookRefusal.INVALID_DESCRIPTION,
            f"a description is at most {DESCRIPTION_CHARS_MAX} printable characters",
        )
    return text


def _endpoint(row: Any) -> Endpoint:
    m = row._mapping
    return Endpoint(
        id=int(m["id"]), merchant_id=int(m["merchant_id"]), url=str(m["url"]),
        description=str(m["description"]),
        event_types=tuple(EventType(t) for t in str(m["event_types"]).split(",") if t),
        status=EndpointStatus(m["status"]), secret_hint=str(m["secret"])[:10],
        created_at_ns=int(m["created_at_ns"]), updated_at_ns=int(m["updated_at_ns"]),
    )  # fmt: skip


def _load(connection: sa.Connection, merchant_id: int, endpoint_id: int) -> Endpoint | None:
    e = webhook_endpoints.c
    row = connection.execute(
        sa.select(webhook_endpoints).where(e.id == endpoint_id, e.merchant_id == merchant_id)
    ).first()
    return None if row is None else _endpoint(row)


def _set_secret(connection: sa.Connection, endpoint_id: int, now_ns: int) -> str:
    secret = new_secret()
    connection.execute(
        webhook_endpoints.update()
        .where(webhook_endpoints.c.id == endpoint_id)
        .values(secret=secret, updated_at_ns=now_ns)
    )
    return secret


def create_endpoint(
    *,
    platform: Platform,
    merchant_id: int,
    url: str,
    event_types: Sequence[str] | None = None,
    description: str = "",
    idempotency: IdempotencyTag | None = None,
) -> tuple[Endpoint, str]:
    """Register ``url`` for ``merchant_id``: the endpoint and its secret (show it once)."""
    url = check_url(url)
    types = check_event_types(event_types)
    description = check_description(description)
    now = platform.clock.now_ns()
    e = webhook_endpoints.c

    def create(connection: sa.Connection) -> tuple[int, tuple[Endpoint, str]]:
        count = connection.execute(
            sa.select(sa.func.count()).where(
                e.merchant_id == merchant_id, e.status != EndpointStatus.DELETED.value
            )
        ).scalar_one()
        if int(count) >= ENDPOINTS_PER_MERCHANT_MAX:
            raise WebhookError(
                WebhookRefusal.TOO_MANY_ENDPOINTS,
                f"a merchant has at most {ENDPOINTS_PER_MERCHANT_MAX} endpoints",
            )
        secret = new_secret()
        endpoint_id = inserted_id(connection.execute(
            webhook_endpoints.insert().values(
                merchant_id=merchant_id, url=url, description=description,
                event_types=",".join(t.value for t in types), secret=secret,
                status=EndpointStatus.ENABLED.value, created_at_ns=now, updated_at_ns=now,
            )
        ))  # fmt: skip
        found = _load(connection, merchant_id, int(endpoint_id))
        assert found is not None
        return int(endpoint_id), (found, secret)

    def retried(connection: sa.Connection, endpoint_id: int) -> tuple[Endpoint, str]:
        secret = _set_secret(connection, endpoint_id, now)
        found = _load(connection, merchant_id, endpoint_id)
        assert found is not None
        return found, secret

    return once(
        platform.engine, idempotency, kind=EFFECT_ENDPOINT, now_ns=platform.clock.now_ns,
        create=create, load=retried,
    )  # fmt: skip


def list_endpoints(*, platform: Platform, merchant_id: int) -> list[Endpoint]:
    """The merchant's endpoints that are not deleted, oldest first (at most 16: one page)."""
    e = webhook_endpoints.c
    with platform.engine.connect() as connection:
        rows = connection.execute(
            sa.select(webhook_endpoints)
            .where(e.merchant_id == merchant_id, e.status != EndpointStatus.DELETED.value)
            .order_by(e.id)
        ).all()
    return [_endpoint(r) for r in rows]


def get_endpoint(*, platform: Platform, merchant_id: int, endpoint_id: int) -> Endpoint | None:
    """The merchant's endpoint (``None`` for another merchant's, or a deleted one)."""
    with platform.engine.connect() as connection:
        found = _load(connection, merchant_id, endpoint_id)
    return None if found is None or found.status is EndpointStatus.DELETED else found


def update_endpoint(
    *,
    platform: Platform,
    merchant_id: int,
    endpoint_id: int,
    url: str | None = None,
    event_types: Sequence[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
) -> Endpoint | None:
    """Change what is given; ``None`` when the merchant has no such endpoint."""
    values: dict[str, object] = {"updated_at_ns": platform.clock.now_ns()}
    if url is not None:
        values["url"] = check_url(url)
    if event_types is not None:
        values["event_types"] = ",".join(t.value for t in check_event_types(event_types))
    if description is not None:
        values["description"] = check_description(description)
    if enabled is not None:
        values["status"] = (EndpointStatus.ENABLED if enabled else EndpointStatus.DISABLED).value
    with platform.engine.begin() as connection:
        found = _load(connection, merchant_id, endpoint_id)
        if found is None or found.status is EndpointStatus.DELETED:
            return None
        connection.execute(
            webhook_endpoints.update().where(webhook_endpoints.c.id == endpoint_id).values(values)
        )
        return _load(connection, merchant_id, endpoint_id)


def rotate_secret(
    *, platform: Platform, merchant_id: int, endpoint_id: int
) -> tuple[Endpoint, str] | None:
    """A new secret for the endpoint (the old one stops signing at once); ``None`` when the
    merchant has no such endpoint."""
    with platform.engine.begin() as connection:
        found = _load(connection, merchant_id, endpoint_id)
        if found is None or found.status is EndpointStatus.DELETED:
            return None
        secret = _set_secret(connection, endpoint_id, platform.clock.now_ns())
        updated = _load(connection, merchant_id, endpoint_id)
        assert updated is not None
        return updated, secret


def delete_endpoint(*, platform: Platform, merchant_id: int, endpoint_id: int) -> bool:
    """Delete the endpoint (its log stays; its pending deliveries are cancelled); ``False``
    when the merchant has no such endpoint."""
    now = platform.clock.now_ns()
    with platform.engine.begin() as connection:
        found = _load(connection, merchant_id, endpoint_id)
        if found is None or found.status is EndpointStatus.DELETED:
            return False
        connection.execute(
            webhook_endpoints.update()
            .where(webhook_endpoints.c.id == endpoint_id)
            .values(status=EndpointStatus.DELETED.value, updated_at_ns=now)
        )
        d = webhook_deliveries.c
        connection.execute(
            webhook_deliveries.update()
            .where(d.endpoint_id == endpoint_id, d.state == "pending")
            .values(state="cancelled", next_attempt_at_ns=None, updated_at_ns=now)
        )
        return True
