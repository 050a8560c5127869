"""The authorization matrix: every route of the app × every kind of caller → the right status.

The table is checked against the app's routes (its OpenAPI operations): a route without an entry
(or an entry without a route) fails the test, so a new endpoint cannot ship without deciding who
may call it.

Callers: ``anonymous``; a wallet ``user`` (bearer token, verified by the function the wallet plugs
into ``create_app``); ``merchant`` and ``institution`` keys; ``network_admin`` (the network
operator's institution key). Resource-owning routes (cards, transfers) will split ``user`` into
``owner`` and ``other_user`` (404) when the wallet's routes land.
"""

from __future__ import annotations

import httpx
import pytest

from flashpay.api.app import create_app
from flashpay.auth import PrincipalKind, create_api_key
from flashpay.clock import FakeClock
from flashpay.db import create_engine

pytestmark = pytest.mark.anyio

CALLERS = ("anonymous", "user", "merchant", "institution", "network_admin")

# (method, path template) -> expected status per caller, in CALLERS order.
MATRIX: dict[tuple[str, str], tuple[int, int, int, int, int]] = {
    ("GET", "/v1/health"): (200, 200, 200, 200, 200),
    ("GET", "/v1/ready"): (200, 200, 200, 200, 200),
    ("GET", "/v1/admin/api-keys"): (401, 403, 403, 403, 200),
    ("POST", "/v1/admin/api-keys/{key_id}/revoke"): (401, 403, 403, 403, 200),
}
USER_TOKEN = "token-of-a-wallet-user-0123456789"


class _Runtime:
    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self.clock = FakeClock()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _routes(app) -> set[tuple[str, str]]:
    """Every operation of the app, from its OpenAPI document (which FastAPI builds from routes)."""
    return {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }


def test_every_route_has_an_entry_and_every_entry_a_route(tmp_path):
    runtime = _Runtime(f"sqlite:///{tmp_path}/x.db")
    app = create_app(runtime, request_hash_key=b"k" * 32)
    assert _routes(app) == set(MATRIX)
    runtime.engine.dispose()


async def test_authorization_matrix(database_url):
    runtime = _Runtime(database_url)
    app = create_app(runtime, request_hash_key=b"k" * 32, verify_user_token={USER_TOKEN: 3}.get)
    headers = {
        "anonymous": {},
        "user": {"Authorization": f"Bearer {USER_TOKEN}"},
        "merchant": {
            "X-Api-Key": create_api_key(
                platform=runtime, kind=PrincipalKind.MERCHANT, principal_id=5
            ).key
        },
        "institution": {
            "X-Api-Key": create_api_key(
                platform=runtime, kind=PrincipalKind.INSTITUTION, principal_id=2
            ).key
        },
        "network_admin": {
            "X-Api-Key": create_api_key(
                platform=runtime, kind=PrincipalKind.INSTITUTION, principal_id=1, network_admin=True
            ).key
        },
    }
    # Path parameters point at a resource each caller could act on: a fresh key per request.
    failures = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for (method, template), expected in sorted(MATRIX.items()):
            for caller, status in zip(CALLERS, expected, strict=True):
                target = create_api_key(
                    platform=runtime, kind=PrincipalKind.MERCHANT, principal_id=99
                )
                path = template.format(key_id=target.key_id)
                response = await client.request(method, path, headers=headers[caller])
                if response.status_code != status:
                    failures.append((method, template, caller, status, response.status_code))
    runtime.engine.dispose()
    assert failures == []
