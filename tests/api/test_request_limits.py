"""The global cap on request bodies, over ASGI on SQLite and PostgreSQL: every method and route
answers 413 ``request_too_large`` to a body over ``REQUEST_BODY_BYTES_MAX`` — declared in
``Content-Length`` or streamed without one — instead of reading it in full."""

from __future__ import annotations

import pytest
from world import code_of

from flashpay.api.body_limit import REQUEST_BODY_BYTES_MAX

pytestmark = pytest.mark.anyio

TEN_MB = 10 * 1024 * 1024


def _too_large(response) -> None:
    assert (response.status_code, code_of(response)) == (413, "request_too_large"), response.text
    assert set(response.json()["error"]) == {"code", "message", "details"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/users"),
        ("POST", "/v1/sessions"),
        ("PUT", "/v1/me/pin"),
        ("PATCH", "/v1/me"),
        ("DELETE", "/v1/sessions/current"),
        ("GET", "/v1/health"),
        ("POST", "/v1/nowhere"),
    ],
)
async def test_a_declared_10_mb_body_is_413(world, method, path):
    body = b'{"phone": "' + b"1" * TEN_MB + b'"}'
    response = await world.client.request(
        method, path, content=body, headers={"Content-Type": "application/json"}
    )
    _too_large(response)


async def test_a_streamed_body_is_cut_at_the_cap(world):
    sent = 0

    async def chunks():
        nonlocal sent
        for _ in range(TEN_MB // 65_536):
            sent += 65_536
            yield b" " * 65_536

    for path, headers in (("/v1/users", {}), ("/v1/users", {"Idempotency-Key": "k-1"})):
        sent = 0
        response = await world.client.post(
            path, content=chunks(), headers={"Content-Type": "application/json", **headers}
        )
        _too_large(response)
        assert sent <= REQUEST_BODY_BYTES_MAX + 2 * 65_536  # it stopped reading


async def test_a_body_under_the_cap_is_read(world):
    body = b'{"phone": "' + b"1" * (REQUEST_BODY_BYTES_MAX - 100) + b'"}'
    response = await world.client.post(
        "/v1/sessions", content=body, headers={"Content-Type": "application/json"}
    )
    assert (response.status_code, code_of(response)) == (422, "validation_error")
