"""One error object for every failure the API returns, and the handlers that produce it.

Every 4xx/5xx response body is ``{"error": {"code", "message", "details"}}``: ``code`` is a
machine-readable ``snake_case`` string that clients branch on (listed in
``docs/reference/http-api.md``), ``message`` is for people, ``details`` carries structured context
(for a validation error, the failing fields). Request validation errors (FastAPI's 422), unknown
routes (404), wrong methods (405) and unexpected exceptions (500, without internals) are mapped to
the same shape. A *domain* outcome of a valid request — a declined transfer — is not an error: it
is a resource with ``status: "declined"`` (see ``docs/decisions/0005-http-api-conventions.md``).

Validation details never echo the submitted value: a request body may hold a card number.
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


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
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
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, HTTPStatus(exc.status_code).phrase.lower())
    code = code.replace(" ", "_").replace("-", "_")
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return _response(exc.status_code, code, message, headers=exc.headers)


async def _unexpected_error(_request: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled error: %s", type(exc).__name__, exc_info=exc)
    return _response(500, "internal_error", "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
