"""``/v1/acquirer/merchants`` (an acquirer signs merchants) and ``/v1/merchant`` (a merchant's
own terminals, static codes and dynamic orders, as text, PNG or SVG).

Signing a merchant returns its API key once (``Cache-Control: no-store``, so the idempotency
layer does not keep it). Another acquirer's merchant, another merchant's order: 404.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from flashpay.api.deps import CurrentInstitution, CurrentMerchant, IdempotencyDep, ServicesDep
from flashpay.api.errors import ApiError, not_found
from flashpay.api.types import IdPath, amount_minor
from flashpay.auth import PrincipalKind, create_api_key
from flashpay.auth.service import replace_api_keys
from flashpay.errors import InvariantError
from flashpay.idempotency import effect_of
from flashpay.institutions.service import get_institution
from flashpay.merchants import service
from flashpay.merchants.schemas import (
    MerchantOut,
    OnboardedOut,
    OnboardIn,
    OrderIn,
    OrderOut,
    TerminalOut,
)
from flashpay.qr.images import render_qr

router = APIRouter(tags=["merchants"])
Format = Annotated[Literal["text", "png", "svg"], Query(description="text, png or svg")]


@router.post("/v1/acquirer/merchants", status_code=201, response_model=OnboardedOut)
def onboard(
    body: OnboardIn,
    caller: CurrentInstitution,
    platform: ServicesDep,
    response: Response,
    idempotency: IdempotencyDep,
) -> OnboardedOut:
    """Sign a merchant (acquirers only): its record, terminal T0001, its ledger account and its
    API key (shown once). A retry with the same Idempotency-Key answers the same merchant with a
    new key; the key of the earlier answer is revoked."""
    acquirer = get_institution(platform=platform, institution_id=caller.id)
    if acquirer is None:
        raise InvariantError("an authenticated institution exists")
    scene = service.parse_scene(body.scene)
    retried = effect_of(platform.engine, idempotency) is not None  # its first answer lost
    merchant = service.onboard_merchant(
        platform=platform,
        acquirer=acquirer,
        legal_name=body.legal_name,
        display_name=body.display_name,
        city=body.city,
        mcc=body.mcc,
        scene=scene,
        idempotency=idempotency,
    )
    issue = replace_api_keys if retried else create_api_key
    key = issue(platform=platform, kind=PrincipalKind.MERCHANT, principal_id=merchant.id)
    response.headers["Cache-Control"] = "no-store"
    return OnboardedOut(**MerchantOut.of(merchant).model_dump(), api_key=key.key)


@router.get("/v1/acquirer/merchants", response_model=list[MerchantOut])
def acquirer_merchants(caller: CurrentInstitution, platform: ServicesDep) -> list[MerchantOut]:
    """The merchants this acquirer signed (acquirers only)."""
    acquirer = get_institution(platform=platform, institution_id=caller.id)
    if acquirer is None or acquirer.kind.value != "acquirer":
        raise ApiError(status_code=403, code="forbidden", message="this endpoint is for acquirers")
    return [
        MerchantOut.of(m) for m in service.list_merchants(platform=platform, acquirer_id=caller.id)
    ]


def _me(platform: ServicesDep, merchant_id: int) -> service.Merchant:
    found = service.get_merchant(platform=platform, merchant_id=merchant_id)
    if found is None:
        raise not_found("merchant")
    return found


@router.get("/v1/merchant", response_model=MerchantOut)
def me(merchant: CurrentMerchant, platform: ServicesDep) -> MerchantOut:
    return MerchantOut.of(_me(platform, merchant.id))


@router.post("/v1/merchant/terminals", status_code=201, response_model=TerminalOut)
def add_terminal(
    merchant: CurrentMerchant, platform: ServicesDep, idempotency: IdempotencyDep
) -> TerminalOut:
    terminal = service.add_terminal(
        platform=platform, merchant_id=_me(platform, merchant.id).id, idempotency=idempotency
    )
    return TerminalOut(id=terminal.id, code=terminal.code)


@router.get("/v1/merchant/terminals", response_model=list[TerminalOut])
def terminals(merchant: CurrentMerchant, platform: ServicesDep) -> list[TerminalOut]:
    return [
        TerminalOut(id=t.id, code=t.code)
        for t in service.list_terminals(platform=platform, merchant_id=merchant.id)
    ]


def _terminal(platform: ServicesDep, merchant_id: int, code: str) -> service.Terminal:
    found = service.terminal_by_code(platform=platform, merchant_id=merchant_id, code=code)
    if found is None:
        raise ApiError(status_code=422, code="unknown_terminal", message="no such terminal")
    return found


def _render(payload: str, fmt: str) -> Response:
    if fmt == "text":
        return Response(payload, media_type="text/plain")
    kind: Literal["png", "svg"] = "png" if fmt == "png" else "svg"
    image = render_qr(payload, kind)
    return Response(image, media_type="image/png" if fmt == "png" else "image/svg+xml")


@router.get("/v1/merchant/qr")
def static_qr(
    merchant: CurrentMerchant,
    platform: ServicesDep,
    terminal: str = "T0001",
    format: Format = "text",
) -> Response:
    """The static code of one of your terminals (the payer types the amount)."""
    me_ = _me(platform, merchant.id)
    payload = service.static_payload(
        platform=platform, merchant=me_, terminal=_terminal(platform, me_.id, terminal)
    )
    return _render(payload, format)


@router.post("/v1/merchant/orders", status_code=201, response_model=OrderOut)
def create_order(
    body: OrderIn, merchant: CurrentMerchant, platform: ServicesDep, idempotency: IdempotencyDep
) -> OrderOut:
    """A dynamic code for one order: amount, bill number, expiry ≤ 15 minutes; payable once."""
    amount = amount_minor(body.amount)
    me_ = _me(platform, merchant.id)
    terminal = _terminal(platform, me_.id, body.terminal)
    order, payload = service.create_order(
        platform=platform,
        merchant=me_,
        terminal=terminal,
        amount=amount,
        bill_number=body.bill_number,
        expires_in_seconds=body.expires_in_seconds,
        idempotency=idempotency,
    )
    return OrderOut.of(order, payload)


def _order(platform: ServicesDep, merchant_id: int, order_id: int) -> service.Order:
    found = service.get_order(platform=platform, merchant_id=merchant_id, order_id=order_id)
    if found is None:
        raise not_found("order")
    return found


@router.get("/v1/merchant/orders/{order_id}", response_model=OrderOut)
def get_order(order_id: IdPath, merchant: CurrentMerchant, platform: ServicesDep) -> OrderOut:
    order = _order(platform, merchant.id, order_id)
    payload = service.order_payload(
        platform=platform, merchant=_me(platform, merchant.id), order=order
    )
    return OrderOut.of(order, payload)


@router.get("/v1/merchant/orders/{order_id}/qr")
def order_qr(
    order_id: IdPath, merchant: CurrentMerchant, platform: ServicesDep, format: Format = "png"
) -> Response:
    order = _order(platform, merchant.id, order_id)
    payload = service.order_payload(
        platform=platform, merchant=_me(platform, merchant.id), order=order
    )
    return _render(payload, format)
