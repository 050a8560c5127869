"""A global cap on request bodies: ``BodyLimitMiddleware`` (pure ASGI), outside everything else.

Every request, whatever its method or route, may carry at most ``REQUEST_BODY_BYTES_MAX`` bytes.
A declared ``Content-Length`` above it (or one that is not a number) is answered 413
``request_too_large`` before a byte is read; a body streamed without one (chunked) is counted as
it is read, and the read that passes the cap raises ``BodyTooLargeError`` — a FastAPI
``HTTPException`` (413), so a route reading its body answers it through the usual error handler,
and a middleware reading it (idempotency) lets it reach this one, which answers it. A route that
never reads its body never pays for it.
"""

from __future__ import annotations

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flashpay.api.errors import error_body

REQUEST_BODY_BYTES_MAX = 1024 * 1024  # 1 MiB; the largest real request is a few kB
_MESSAGE = f"the request body is larger than {REQUEST_BODY_BYTES_MAX} bytes"


class BodyTooLargeError(HTTPException):
    """The body read so far passed ``REQUEST_BODY_BYTES_MAX`` (answered 413)."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail=_MESSAGE)


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limit_bytes: int = REQUEST_BODY_BYTES_MAX) -> None:
        self.app = app
        self.limit_bytes = limit_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (
            not declared.strip().isdigit() or int(declared) > self.limit_bytes
        ):
            await _too_large(send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit_bytes:
                    raise BodyTooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLargeError:
            if started:  # pragma: no cover - a route that answers before reading its body
                raise
            await _too_large(send)


async def _too_large(send: Send) -> None:
    body = error_body("request_too_large", _MESSAGE)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
