"""``Annotated`` dependencies shared by every router: the platform and the authenticated caller.

``CurrentUser``, ``CurrentInstitution`` and ``CurrentMerchant`` resolve the caller (see
``flashpay.api.security``) and answer 401 ``authentication_required`` for an anonymous request and
403 ``forbidden`` for a caller of the wrong kind (a merchant key on a wallet endpoint).
``CurrentNetworkAdmin`` is an institution key flagged ``network_admin`` (the network operator's).
Access to a *resource* of another caller of the right kind is the router's business and is always
a 404. A domain's own services on the app (the payment switches) are read by that domain's
dependencies (``flashpay.payments.deps``) through ``app_service``: the kernel names no domain.

The dependencies are ``async`` so that FastAPI does not hop to a worker thread for each of them
(one hop per sync dependency); only the credential look-up, which queries the database, runs in a
thread, once per request.
"""

from __future__ import annotations

from typing import Annotated

from anyio import to_thread
from fastapi import Depends, Request

from flashpay.api.errors import ApiError
from flashpay.api.idempotency import IDEMPOTENCY_SCOPE_KEY
from flashpay.api.security import (
    ActorKind,
    Authenticator,
    Principal,
    resolved_principal,
)
from flashpay.idempotency import IdempotencyTag
from flashpay.platform import Platform, Runtime


async def get_platform(request: Request) -> Runtime:
    platform: Runtime = request.app.state.platform
    return platform


PlatformDep = Annotated[Runtime, Depends(get_platform)]


async def optional_principal(request: Request) -> Principal | None:
    known, principal = resolved_principal(request.scope)
    if known:
        return principal
    authenticator: Authenticator = request.app.state.authenticator
    return await to_thread.run_sync(authenticator.cached, request.scope)


OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]


def _require(principal: Principal | None, kind: ActorKind) -> Principal:
    if principal is None:
        raise ApiError(
            status_code=401,
            code="authentication_required",
            message="this endpoint needs credentials",
            headers={"WWW-Authenticate": 'Bearer realm="flashpay", ApiKey realm="flashpay"'},
        )
    if principal.kind is not kind:
        raise ApiError(
            status_code=403,
            code="forbidden",
            message=f"this endpoint is for {kind.value}s, not {principal.kind.value}s",
        )
    return principal


async def require_user(principal: OptionalPrincipal) -> Principal:
    return _require(principal, ActorKind.USER)


async def require_institution(principal: OptionalPrincipal) -> Principal:
    return _require(principal, ActorKind.INSTITUTION)


async def require_merchant(principal: OptionalPrincipal) -> Principal:
    return _require(principal, ActorKind.MERCHANT)


async def require_network_admin(principal: OptionalPrincipal) -> Principal:
    institution = _require(principal, ActorKind.INSTITUTION)
    if not institution.network_admin:
        raise ApiError(
            status_code=403,
            code="forbidden",
            message="this endpoint is for the network operator's administration key",
        )
    return institution


CurrentUser = Annotated[Principal, Depends(require_user)]
CurrentInstitution = Annotated[Principal, Depends(require_institution)]
CurrentMerchant = Annotated[Principal, Depends(require_merchant)]
CurrentNetworkAdmin = Annotated[Principal, Depends(require_network_admin)]


async def get_services(request: Request) -> Platform:
    """The full platform (ledger, keys, notifier) for the domain routers."""
    platform = request.app.state.platform
    if not isinstance(platform, Platform):
        raise ApiError(
            status_code=503, code="service_unavailable", message="the domain services are not open"
        )
    return platform


ServicesDep = Annotated[Platform, Depends(get_services)]


def app_service(request: Request, name: str) -> object:
    """The service a composition root put on ``app.state.<name>`` (a domain's dependency reads
    its own this way, e.g. ``flashpay.payments.deps``); 503 ``service_unavailable`` when this app
    has none."""
    service = getattr(request.app.state, name, None)
    if service is None:
        raise ApiError(
            status_code=503, code="service_unavailable", message="the domain services are not open"
        )
    return service


async def idempotency_tag(request: Request) -> IdempotencyTag | None:
    """The caller's Idempotency-Key as the idempotency middleware claimed it (``None`` when the
    request has none): services bind it to the effect they create (``flashpay.idempotency``)."""
    tag = request.scope.get(IDEMPOTENCY_SCOPE_KEY)
    return tag if isinstance(tag, IdempotencyTag) else None


IdempotencyDep = Annotated[IdempotencyTag | None, Depends(idempotency_tag)]
