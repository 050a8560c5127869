"""``/v1/admin/api-keys`` through the ASGI app: listing pages and filters, revocation outcomes."""

from __future__ import annotations

import httpx
import pytest

from flashpay.app import create_app
from flashpay.auth import PrincipalKind, create_api_key
from flashpay.clock import FakeClock
from flashpay.db import create_engine

pytestmark = pytest.mark.anyio


class _Runtime:
    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self.clock = FakeClock()


@pytest.fixture
async def setup(database_url):
    runtime = _Runtime(database_url)
    admin = create_api_key(
        platform=runtime, kind=PrincipalKind.INSTITUTION, principal_id=1, network_admin=True
    )
    for merchant_id in (10, 11, 10, 12, 10):
        create_api_key(platform=runtime, kind=PrincipalKind.MERCHANT, principal_id=merchant_id)
    transport = httpx.ASGITransport(app=create_app(runtime, request_hash_key=b"k" * 32))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", headers={"X-Api-Key": admin.key}
    ) as client:
        yield client, admin
    runtime.engine.dispose()


async def test_list_pages_through_every_key_once(setup):
    client, admin = setup
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/admin/api-keys", params=params)).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [item["id"] for item in seen] == sorted(item["id"] for item in seen)
    assert len(seen) == 6
    assert seen[0]["network_admin"] is True
    assert all(admin.key not in repr(item) for item in seen)
    assert all(len(item["key_prefix"]) == 12 for item in seen)


async def test_list_filters_by_principal(setup):
    client, _ = setup
    page = (
        await client.get(
            "/v1/admin/api-keys", params={"principal_kind": "merchant", "principal_id": 10}
        )
    ).json()
    assert [(i["principal_kind"], i["principal_id"]) for i in page["items"]] == [
        ("merchant", 10)
    ] * 3
    bad = await client.get("/v1/admin/api-keys", params={"principal_kind": "bank"})
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "validation_error"


async def test_revoke_unknown_key_is_404(setup):
    client, _ = setup
    response = await client.post("/v1/admin/api-keys/987654/revoke")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
