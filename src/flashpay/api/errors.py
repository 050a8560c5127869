"""One error object for every failure the API returns, and the handlers that produce it.

Every 4xx/5xx response body is ``{"error": {"code", "message", "details"}}``: ``code`` is a
machine-readable ``snake_case`` string that clients branch on (listed in
``docs/reference/http-api.md``), ``message`` is for people, ``details`` carries structured context
(for a validation error, the failing fields). Request validation errors (FastAPI's 422), unknown
routes (404), wrong methods (405) and unexpected exceptions (500, without internals) are mapped to
the same shape. A *domain* outcome of a valid request — a declined transfer — is not an error: it
is a resource with ``status: "declined"`` (see ``docs/decisions/0005-http-api-conventions.md``).

Validation details never echo the submitted value: a request body may hold a card number.

Domains never know HTTP. A domain refuses a request by raising a ``RefusedError`` whose reason is
a member of its refusal enum; ``REFUSAL_STATUS`` below is the one table from that code to the
status the API answers (``docs/reference/errors.md`` lists it with each code's meaning), and
``_refused`` the one handler. A code missing from the table answers 422, and a unit test fails
the build for any refusal enum member the table does not name.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from flashpay.errors import InvariantError, RefusedError, UnavailableError

logger = logging.getLogger(__name__)


class ErrorObject(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = {}


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorObject


class ApiError(Exception):
    """An error answered with ``status_code`` and the error object; raise it from routers."""

    def __init__(
        self,
        *,
        status_code: int,
        code: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = dict(details or {})
        self.headers = dict(headers or {})


def not_found(resource: str) -> ApiError:
    """404 for a resource that does not exist *or belongs to someone else* (never 403)."""
    return ApiError(status_code=404, code="not_found", message=f"{resource} not found")


def error_body(code: str, message: str, details: Mapping[str, Any] | None = None) -> bytes:
    """The serialized error object (used by the idempotency middleware, which bypasses routes)."""
    return (
        ErrorResponse(error=ErrorObject(code=code, message=message, details=dict(details or {})))
        .model_dump_json()
        .encode()
    )


def _response(
    status_code: int,
    code: str,
    message: str,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": dict(details or {})}}
    return JSONResponse(body, status_code=status_code, headers=dict(headers or {}))


REFUSAL_STATUS_DEFAULT = 422
"""The status of a refusal whose code the table does not name: the request is understood but
cannot be carried out."""

REFUSAL_STATUS: Mapping[str, int] = {
    # Shared by several domains: the caller may not, or the thing is not there (or not theirs).
    "forbidden": 403,
    "not_found": 404,
    # auth
    "api_key_already_revoked": 409,
    # institutions
    "invalid_network_definition": 422,
    "network_conflict": 409,
    # settlement
    "no_settlement_bank": 409,
    "window_not_due": 409,
    "window_not_found": 404,
    "window_not_settled": 409,
    "settlement_refused": 409,
    "invalid_record": 422,
    # chain
    "invalid_tree_size": 400,
    # merchants
    "invalid_display_name": 422,
    "invalid_city": 422,
    "invalid_mcc": 422,
    "invalid_legal_name": 422,
    "invalid_scene": 422,
    "invalid_amount": 422,
    "invalid_expiry": 422,
    "invalid_bill_number": 422,
    "duplicate_bill_number": 409,
    # wallet: registration, login, PIN
    "invalid_phone": 422,
    "invalid_id_number": 422,
    "invalid_name": 422,
    "weak_password": 422,
    "phone_already_registered": 409,
    "invalid_login": 401,
    "wrong_password": 403,
    "account_locked": 429,
    "too_many_attempts": 429,
    "invalid_pin": 422,
    "weak_pin": 422,
    # wallet: binding and enrolling cards
    "invalid_card_number": 422,
    "card_already_bound": 409,
    "too_many_cards": 422,
    "unknown_bin": 422,
    "card_not_recognised": 422,
    "card_expired": 422,
    "card_closed": 422,
    "cvv_required": 422,
    "real_name_mismatch": 422,
    "binding_limit_reached": 429,
    "binding_closed": 409,
    "otp_expired": 422,
    "wrong_otp": 422,
    "otp_attempts_exceeded": 422,
    "wallet_not_found": 404,
    "batch_too_large": 422,
    # payments: transfers, QR payments, limits
    "unsupported_currency": 422,
    "invalid_recipient": 422,
    "invalid_memo": 422,
    "invalid_limit": 422,
    "amount_mismatch": 422,
    "amount_required": 422,
    "unknown_terminal": 422,
    "invalid_hold": 422,
    "not_authorized": 409,
    "hold_not_settled": 409,
    "not_refundable": 409,
    "refund_exceeds_payment": 422,
    "refund_failed": 409,
    # cards (the issuer's card file)
    "card_exists": 409,
    "bin_not_yours": 422,
    "invalid_credit_limit": 422,
    # promotions: a definition that does not check (details.path names the field) ...
    "promo_invalid_definition": 422,
    "promo_invalid_period": 422,
    "promo_invalid_window": 422,
    "promo_invalid_benefit": 422,
    "promo_invalid_cap": 422,
    "promo_invalid_budget": 422,
    "promo_fixed_price_not_stackable": 422,
    # ... a campaign that is not there or not the caller's, a funder funding from other books ...
    "promo_campaign_not_found": 404,
    "promo_not_funder": 403,
    # ... and what the campaign's state, policy or counters refuse now (409: a conflict with the
    # campaign as it is). The eligibility and taking reasons are answered as an offer's or a
    # quote's ``why_not`` (200), not as errors; they are 409 should a request ever be refused so.
    "promo_invalid_transition": 409,
    "promo_overlapping_exclusive": 409,
    "promo_coupons_not_offered": 409,
    "promo_coupon_not_claimable": 409,
    "promo_coupons_all_issued": 409,
    "promo_coupon_already_held": 409,
    "promo_unknown_user": 404,
    "promo_invalid_code": 422,
    "promo_amount_required": 422,
    "promo_amount_mismatch": 422,
    "promo_not_active": 409,
    "promo_outside_period": 409,
    "promo_outside_window": 409,
    "promo_wrong_scene": 409,
    "promo_wrong_merchant": 409,
    "promo_wrong_mcc": 409,
    "promo_wrong_city": 409,
    "promo_wrong_mode": 409,
    "promo_wrong_issuer": 409,
    "promo_wrong_card_kind": 409,
    "promo_not_new_user": 409,
    "promo_below_minimum": 409,
    "promo_no_discount": 409,
    "promo_no_coupon": 409,
    "promo_budget_exhausted": 409,
    "promo_user_daily_cap": 409,
    "promo_user_campaign_cap": 409,
    "promo_card_cap": 409,
    "promo_already_taken": 409,
    "promo_coupon_unavailable": 409,
    # webhooks
    "endpoint_url_too_long": 422,
    "invalid_endpoint_url": 422,
    "invalid_event_types": 422,
    "invalid_description": 422,
    "too_many_endpoints": 409,
    "invalid_event_id": 422,
    # transit: the fare definition (details.where names the entry) and the service's refusals
    "transit_fares_not_toml": 422,
    "transit_fares_missing_field": 422,
    "transit_fares_unknown_network": 422,
    "transit_fares_duplicate_station": 422,
    "transit_fares_bad_time": 422,
    "transit_fares_bad_amount": 422,
    "transit_fares_unknown_area": 422,
    "transit_fares_unknown_timeframe": 422,
    "transit_fares_ambiguous_rules": 422,
    "transit_fares_cap_order": 422,
    "transit_fares_bad_concession": 422,
    "transit_fares_too_many": 422,
    "transit_unknown_token": 404,
    "transit_bad_device_key": 422,
    "transit_bad_credit_limit": 422,
    "transit_unknown_concession": 422,
    "transit_token_deny_listed": 409,
    "transit_no_operator": 409,
    "transit_not_operator": 403,
    "transit_too_many_taps": 422,
    "transit_unknown_station": 422,
    "transit_trip_not_found": 404,
    "transit_not_disputable": 409,
}
"""Refusal code → HTTP status, grouped by the domain that refuses (a code shared by domains has
one status everywhere). Keep ``docs/reference/errors.md`` in step."""


def refusal_status(code: str) -> int:
    """The status a refusal with ``code`` is answered with."""
    return REFUSAL_STATUS.get(code, REFUSAL_STATUS_DEFAULT)


async def _refused(_request: Request, exc: Exception) -> JSONResponse:
    """A domain's refusal as the one error object: the status from ``REFUSAL_STATUS``, the
    domain's details, and for a throttled request (429) when to try again, both as
    ``details.retry_after_seconds`` and as the ``Retry-After`` header."""
    if not isinstance(exc, RefusedError):
        raise exc
    return _refusal(exc.code, exc.message, exc.details, exc.retry_after_seconds)


def _refusal(
    code: str, message: str, details: Mapping[str, Any], retry_after_seconds: int | None
) -> JSONResponse:
    details = dict(details)
    headers: dict[str, str] = {}
    if retry_after_seconds is not None:
        details["retry_after_seconds"] = retry_after_seconds
        headers["Retry-After"] = str(retry_after_seconds)
    return _response(refusal_status(code), code, message, details, headers)


async def _unavailable(_request: Request, exc: Exception) -> JSONResponse:
    """A service outside flashpay did not take the request (the SMS gateway is down): 503, not
    stored by the idempotency layer, so the client may retry (with its Idempotency-Key, a binding
    it started gets a fresh code). The outside service's words stay in the log, not the answer."""
    if not isinstance(exc, UnavailableError):
        raise exc
    headers = {"Retry-After": str(exc.retry_after_seconds)}
    return _response(503, exc.code, exc.message, headers=headers)


async def _invariant_error(_request: Request, exc: Exception) -> JSONResponse:
    """A broken internal promise is a bug: logged in full, answered 500 without internals."""
    logger.error("invariant failed: %s", exc, exc_info=exc)
    return _response(500, "internal_error", "internal server error")


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, ApiError):
        raise exc
    return _response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):
        raise exc
    errors = [
        {
            "location": [str(part) for part in error.get("loc", ())],
            "message": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in exc.errors()
    ]
    return _response(422, "validation_error", "the request is not valid", {"errors": errors})


_HTTP_CODES = {
    401: "authentication_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
}


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, StarletteHTTPException):
        raise exc
    code = _HTTP_CODES.get(exc.status_code, HTTPStatus(exc.status_code).phrase.lower())
    code = code.replace(" ", "_").replace("-", "_")
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return _response(exc.status_code, code, message, headers=exc.headers)


async def _unexpected_error(_request: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled error: %s", type(exc).__name__, exc_info=exc)
    return _response(500, "internal_error", "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RefusedError, _refused)
    app.add_exception_handler(UnavailableError, _unavailable)
    app.add_exception_handler(InvariantError, _invariant_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
