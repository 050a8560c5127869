"""Request and response shapes of ``/v1/webhooks``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from flashpay.api.schemas import Strict
from flashpay.clock import to_datetime
from flashpay.webhooks.endpoints import Endpoint
from flashpay.webhooks.feed import Delivery, StoredEvent

# Longer than any URL we accept, so that a long URL is the named ``endpoint_url_too_long``
# refusal rather than a generic validation error; the body limit bounds it anyway.
URL_FIELD_CHARS_MAX = 65_536


class EndpointIn(Strict):
    url: str = Field(max_length=URL_FIELD_CHARS_MAX)
    event_types: list[str] | None = Field(default=None, max_length=16)
    description: str = Field(default="", max_length=1000)


class EndpointPatch(Strict):
    url: str | None = Field(default=None, max_length=URL_FIELD_CHARS_MAX)
    event_types: list[str] | None = Field(default=None, max_length=16)
    description: str | None = Field(default=None, max_length=1000)
    enabled: bool | None = None


class EndpointOut(BaseModel):
    id: int
    url: str
    description: str
    event_types: list[str]
    status: str
    secret_hint: str = Field(description="The secret's first characters (whsec_…).")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, e: Endpoint) -> EndpointOut:
        return cls(id=e.id, url=e.url, description=e.description,
                   event_types=[t.value for t in e.event_types], status=e.status.value,
                   secret_hint=e.secret_hint, created_at=to_datetime(e.created_at_ns),
                   updated_at=to_datetime(e.updated_at_ns))  # fmt: skip


class EndpointWithSecretOut(EndpointOut):
    secret: str = Field(description="The signing secret, shown once (whsec_…).")


class EndpointsOut(BaseModel):
    items: list[EndpointOut]


class EventOut(BaseModel):
    """An event as every delivery sends it."""

    id: str
    type: str
    created_at: str
    merchant_id: int
    data: dict[str, Any]

    @classmethod
    def of(cls, e: StoredEvent) -> EventOut:
        return cls(**e.payload())


class EventsPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None = Field(
        description="Pass as `after` for the next page; null when this page is the last for now."
    )


class AttemptOut(BaseModel):
    n: int
    started_at: datetime
    outcome: str
    status_code: int | None
    latency_ms: int | None
    error: str | None


class DeliveryOut(BaseModel):
    id: int
    event_id: str
    event_type: str
    endpoint_id: int
    round: int
    state: str
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    attempts: list[AttemptOut]

    @classmethod
    def of(cls, d: Delivery) -> DeliveryOut:
        return cls(
            id=d.id, event_id=d.event_id, event_type=d.event_type, endpoint_id=d.endpoint_id,
            round=d.round, state=d.state,
            next_attempt_at=None if d.next_attempt_at_ns is None
            else to_datetime(d.next_attempt_at_ns),
            created_at=to_datetime(d.created_at_ns), updated_at=to_datetime(d.updated_at_ns),
            attempts=[AttemptOut(n=a.n, started_at=to_datetime(a.started_at_ns),
                                 outcome=a.outcome, status_code=a.status_code,
                                 latency_ms=a.latency_ms, error=a.error) for a in d.attempts],
        )  # fmt: skip


class DeliveriesPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


class ReplayIn(Strict):
    endpoint_id: int | None = Field(default=None, ge=1, le=2**63 - 1, strict=True)


class ReplayOut(BaseModel):
    event_id: str
    deliveries: list[DeliveryOut]
