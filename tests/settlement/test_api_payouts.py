"""``/v1/settlement/windows/{id}/payouts`` over the ASGI app with real API keys (SQLite and
PostgreSQL): the admin computes a settled window's payouts (idempotent, refused before the
settlement), an acquirer sees its own merchants only, a merchant its own statement only."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from flashpay.app import create_platform_app
from flashpay.auth.service import PrincipalKind, create_api_key
from flashpay.clock import NS_PER_SECOND, FakeClock
from flashpay.institutions.service import get_institution
from flashpay.platform import Platform
from flashpay.settlement.close import close_window
from flashpay.settlement.windows import Schedule, next_cutoff

from .world import World

SCHEDULE = Schedule(close_delay_seconds=5)
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _key(platform: Platform, code: str, *, admin: bool = False) -> str:
    inst = get_institution(platform=platform, code=code)
    assert inst is not None
    return create_api_key(platform=platform, kind=PrincipalKind.INSTITUTION,
                          principal_id=inst.id, network_admin=admin).key  # fmt: skip


async def test_payouts_per_member(service_platform: Platform, tmp_path: Path) -> None:
    platform = service_platform
    clock = platform.clock
    assert isinstance(clock, FakeClock)
    w = World(platform)
    w.person("ann", "BOC")
    wumart = w.shop("Wumart", "UMS")
    canteen = w.shop("Canteen", "LKL")
    w.pay("ann", "Wumart", 10_000)
    w.pay("ann", "Canteen", 3_000)
    cut = next_cutoff(SCHEDULE, clock.now_ns())
    clock.set_ns(cut + 10 * NS_PER_SECOND)
    window_id = close_window(platform=platform, end_ns=cut, schedule=SCHEDULE,
                             directory=tmp_path).window.id  # fmt: skip
    ums, lkl, cup = _key(platform, "UMS"), _key(platform, "LKL"), _key(platform, "CUP", admin=True)
    shop_key = create_api_key(platform=platform, kind=PrincipalKind.MERCHANT,
                              principal_id=wumart.id).key  # fmt: skip
    app = create_platform_app(platform, request_hash_key=b"k" * 32)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        base = f"/v1/settlement/windows/{window_id}"
        early = await client.post(f"{base}/payouts", headers={"X-Api-Key": cup})
        assert early.status_code == 409
        assert early.json()["error"]["code"] == "window_not_settled"
        assert (await client.post(f"{base}/settle", headers={"X-Api-Key": cup})).status_code == 200
        theirs = await client.post(f"{base}/payouts", headers={"X-Api-Key": ums})
        assert theirs.status_code == 403
        made = await client.post(f"{base}/payouts", headers={"X-Api-Key": cup})
        assert made.status_code == 200
        assert {p["merchant_id"] for p in made.json()} == {wumart.id, canteen.id}
        again = await client.post(f"{base}/payouts", headers={"X-Api-Key": cup})
        assert again.json() == made.json()
        own = await client.get(f"{base}/payouts/UMS", headers={"X-Api-Key": ums})
        assert own.status_code == 200
        [payout] = own.json()
        mdr = 10_000 - wumart.fees.split(10_000)[3]
        assert (payout["merchant_id"], payout["payout_fen"]) == (wumart.id, 10_000 - mdr)
        assert (payout["payments_fen"], payout["fees_fen"]) == (10_000, mdr)
        other = await client.get(f"{base}/payouts/UMS", headers={"X-Api-Key": lkl})
        assert other.status_code == 404
        admin = await client.get(f"{base}/payouts/LKL", headers={"X-Api-Key": cup})
        assert [p["merchant_id"] for p in admin.json()] == [canteen.id]
        mine = await client.get(f"{base}/statement", headers={"X-Api-Key": shop_key})
        assert mine.status_code == 200
        assert mine.json() == payout
        as_acquirer = await client.get(f"{base}/statement", headers={"X-Api-Key": ums})
        assert as_acquirer.status_code in (401, 403)
        missing = await client.get("/v1/settlement/windows/1/payouts/UMS",
                                   headers={"X-Api-Key": ums})  # fmt: skip
        assert missing.status_code == 404
