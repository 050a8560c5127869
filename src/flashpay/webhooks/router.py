"""``/v1/webhooks``: a merchant's endpoints, its event feed (a page, or a live Server-Sent
Events stream), its delivery log, and replays. Merchant API keys only; another merchant's
endpoint, event or delivery is a 404. Thin: the work is in ``endpoints``, ``feed`` and
``stream``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from flashpay.api.deps import CurrentMerchant, IdempotencyDep, ServicesDep
from flashpay.api.errors import not_found
from flashpay.api.pagination import CursorQuery, LimitQuery, before_id, encode_cursor
from flashpay.api.types import IdPath, IdQuery
from flashpay.webhooks import endpoints, feed
from flashpay.webhooks.schemas import (
    DeliveriesPage,
    DeliveryOut,
    EndpointIn,
    EndpointOut,
    EndpointPatch,
    EndpointsOut,
    EndpointWithSecretOut,
    EventOut,
    EventsPage,
    ReplayIn,
    ReplayOut,
)
from flashpay.webhooks.stream import STREAM_SECONDS_MAX, event_stream, start_position

router = APIRouter(tags=["webhooks"])
EventIdPath = Annotated[str, "an event id"]
AfterQuery = Annotated[
    str | None, Query(max_length=40, description="An event id: the page starts after it.")
]
TypeQuery = Annotated[list[str] | None, Query(max_length=8, description="Only these types.")]


def _secret_answer(
    response: Response, found: tuple[endpoints.Endpoint, str]
) -> EndpointWithSecretOut:
    response.headers["Cache-Control"] = "no-store"
    endpoint, secret = found
    return EndpointWithSecretOut(**EndpointOut.of(endpoint).model_dump(), secret=secret)


@router.post("/v1/webhooks/endpoints", status_code=201, response_model=EndpointWithSecretOut)
def create_endpoint(
    body: EndpointIn,
    merchant: CurrentMerchant,
    platform: ServicesDep,
    response: Response,
    idempotency: IdempotencyDep,
) -> EndpointWithSecretOut:
    """Register an endpoint; its signing secret is in this answer only (``no-store``). A retry
    with the same Idempotency-Key answers the same endpoint with a new secret."""
    created = endpoints.create_endpoint(
        platform=platform, merchant_id=merchant.id, url=body.url, event_types=body.event_types,
        description=body.description, idempotency=idempotency,
    )  # fmt: skip
    return _secret_answer(response, created)


@router.get("/v1/webhooks/endpoints", response_model=EndpointsOut)
def list_endpoints(merchant: CurrentMerchant, platform: ServicesDep) -> EndpointsOut:
    found = endpoints.list_endpoints(platform=platform, merchant_id=merchant.id)
    return EndpointsOut(items=[EndpointOut.of(e) for e in found])


@router.get("/v1/webhooks/endpoints/{endpoint_id}", response_model=EndpointOut)
def get_endpoint(
    endpoint_id: IdPath, merchant: CurrentMerchant, platform: ServicesDep
) -> EndpointOut:
    found = endpoints.get_endpoint(
        platform=platform, merchant_id=merchant.id, endpoint_id=endpoint_id
    )
    if found is None:
        raise not_found("endpoint")
    return EndpointOut.of(found)


@router.patch("/v1/webhooks/endpoints/{endpoint_id}", response_model=EndpointOut)
def update_endpoint(
    endpoint_id: IdPath, body: EndpointPatch, merchant: CurrentMerchant, platform: ServicesDep
) -> EndpointOut:
    """Change the URL, the event types, the description, or enable/disable (``enabled``)."""
    found = endpoints.update_endpoint(
        platform=platform, merchant_id=merchant.id, endpoint_id=endpoint_id, url=body.url,
        event_types=body.event_types, description=body.description, enabled=body.enabled,
    )  # fmt: skip
    if found is None:
        raise not_found("endpoint")
    return EndpointOut.of(found)


@router.post(
    "/v1/webhooks/endpoints/{endpoint_id}/rotate-secret", response_model=EndpointWithSecretOut
)
def rotate_secret(
    endpoint_id: IdPath, merchant: CurrentMerchant, platform: ServicesDep, response: Response
) -> EndpointWithSecretOut:
    """A new signing secret, shown once; the old one stops signing at once."""
    found = endpoints.rotate_secret(
        platform=platform, merchant_id=merchant.id, endpoint_id=endpoint_id
    )
    if found is None:
        raise not_found("endpoint")
    return _secret_answer(response, found)


@router.delete("/v1/webhooks/endpoints/{endpoint_id}", status_code=204)
def delete_endpoint(endpoint_id: IdPath, merchant: CurrentMerchant, platform: ServicesDep) -> None:
    if not endpoints.delete_endpoint(
        platform=platform, merchant_id=merchant.id, endpoint_id=endpoint_id
    ):
        raise not_found("endpoint")


@router.get("/v1/webhooks/events", response_model=EventsPage)
def list_events(
    merchant: CurrentMerchant,
    platform: ServicesDep,
    after: AfterQuery = None,
    limit: LimitQuery = 20,
    type: TypeQuery = None,
) -> EventsPage:
    """The merchant's events, oldest first, after the event ``after``."""
    found = feed.list_events(
        platform=platform, merchant_id=merchant.id, after=after, limit=limit, types=type or ()
    )
    if found is None:
        raise not_found("event")
    full = len(found) == limit
    return EventsPage(
        items=[EventOut.of(e) for e in found], next_cursor=found[-1].id if full else None
    )


@router.get("/v1/webhooks/events/stream")
async def stream_events(
    request: Request,
    merchant: CurrentMerchant,
    platform: ServicesDep,
    after: AfterQuery = None,
    last_event_id: Annotated[str | None, Header(max_length=40)] = None,
    max_seconds: Annotated[
        int, Query(ge=1, le=STREAM_SECONDS_MAX, description="End the stream after this.")
    ] = STREAM_SECONDS_MAX,
) -> StreamingResponse:
    """The merchant's events live, as Server-Sent Events (``text/event-stream``): each event's
    ``id:`` is its event id, ``event:`` its type and ``data:`` its JSON. Resumes after
    ``Last-Event-ID`` (or ``after``); without either, starts with the next event. Ends after
    ``max_seconds`` (at most 300): the client reconnects with ``Last-Event-ID``."""
    seq = await start_position(platform, merchant.id, last_event_id or after)
    if seq is None:
        raise not_found("event")
    return StreamingResponse(
        event_stream(request, platform, merchant.id, seq, max_seconds=max_seconds),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/v1/webhooks/events/{event_id}", response_model=EventOut)
def get_event(event_id: str, merchant: CurrentMerchant, platform: ServicesDep) -> EventOut:
    found = feed.get_event(platform=platform, merchant_id=merchant.id, event_id=event_id)
    if found is None:
        raise not_found("event")
    return EventOut.of(found)


@router.post("/v1/webhooks/events/{event_id}/replay", status_code=201, response_model=ReplayOut)
def replay_event(
    event_id: str,
    merchant: CurrentMerchant,
    platform: ServicesDep,
    idempotency: IdempotencyDep,
    body: ReplayIn | None = None,
) -> ReplayOut:
    """Send the event again, now: to ``endpoint_id``, or to every enabled endpoint that takes
    its type. A new round of deliveries, each with its own attempts."""
    found = feed.replay_event(
        platform=platform, merchant_id=merchant.id, event_id=event_id,
        endpoint_id=None if body is None else body.endpoint_id, idempotency=idempotency,
    )  # fmt: skip
    if found is None:
        raise not_found("event")
    return ReplayOut(event_id=event_id, deliveries=[DeliveryOut.of(d) for d in found])


@router.get("/v1/webhooks/deliveries", response_model=DeliveriesPage)
def list_deliveries(
    merchant: CurrentMerchant,
    platform: ServicesDep,
    event_id: Annotated[str | None, Query(max_length=40)] = None,
    endpoint_id: IdQuery = None,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
) -> DeliveriesPage:
    """The merchant's deliveries, newest first, each with every attempt (status code,
    latency, error)."""
    found = feed.list_deliveries(
        platform=platform, merchant_id=merchant.id, event_id=event_id, endpoint_id=endpoint_id,
        before_id=before_id(cursor), limit=limit,
    )  # fmt: skip
    next_cursor = encode_cursor({"before": found[-1].id}) if len(found) == limit else None
    return DeliveriesPage(items=[DeliveryOut.of(d) for d in found], next_cursor=next_cursor)


@router.get("/v1/webhooks/deliveries/{delivery_id}", response_model=DeliveryOut)
def get_delivery(
    delivery_id: IdPath, merchant: CurrentMerchant, platform: ServicesDep
) -> DeliveryOut:
    found = feed.get_delivery(platform=platform, merchant_id=merchant.id, delivery_id=delivery_id)
    if found is None:
        raise not_found("delivery")
    return DeliveryOut.of(found)
