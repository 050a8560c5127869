"""``/v1/transit`` through the real ASGI app (SQLite and PostgreSQL): a rider gets a credential,
an operator's gate downloads trust and uploads taps, the admin settles, the rider reads and
disputes trips, the operator reads ridership; refusals answer the error object."""

from __future__ import annotations

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from flashpay.app import create_platform_app
from flashpay.auth import PrincipalKind, create_api_key
from flashpay.transit import codes
from flashpay.transit.codes import GateTrust, verify_code
from flashpay.wallet.payers import bound_cards
from flashpay.wallet.sessions import login
from payments.test_recovery import PASSWORD, member

from .conftest import TransitWorld

NS = 1_000_000_000
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_the_transit_api(world: TransitWorld) -> None:
    platform = world.platform
    app = create_platform_app(platform, request_hash_key=b"k" * 32)
    m = member(platform, 900, bank="BOC", prefix="621661", balance=10_000)
    session = login(platform=platform, phone=m.phone, password=PASSWORD)
    user = {"Authorization": f"Bearer {session.token}"}
    operator = {
        "X-Api-Key": create_api_key(
            platform=platform, kind=PrincipalKind.MERCHANT, principal_id=world.subway.id
        ).key
    }
    admin = {
        "X-Api-Key": create_api_key(
            platform=platform, kind=PrincipalKind.INSTITUTION, principal_id=1, network_admin=True
        ).key
    }
    device = Ed25519PrivateKey.generate()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        body = {
            "wallet_card_id": m.wallet_card_id,
            "ride_credit_limit_minor": 5000,
            "device_public_key": codes.public_bytes(device.public_key()).hex(),
        }
        issued = await client.post("/v1/transit/credentials", json=body, headers=user)
        assert issued.status_code == 201, issued.text
        low = await client.post(
            "/v1/transit/credentials", headers=user, json={**body, "ride_credit_limit_minor": 100}
        )
        assert low.status_code == 422
        assert low.json()["error"]["code"] == "transit_bad_credit_limit"
        credential = bytes.fromhex(issued.json()["credential"])
        not_operator = await client.get("/v1/transit/gate-trust", headers=admin)
        assert not_operator.status_code == 403
        trust = (await client.get("/v1/transit/gate-trust", headers=operator)).json()
        gate = GateTrust(
            bytes.fromhex(trust["network_id"]),
            {
                int(k): Ed25519PublicKey.from_public_bytes(bytes.fromhex(v))
                for k, v in trust["network_keys"].items()
            },
        )
        taps = []
        for n, (station, kind) in enumerate([("S01", "in"), ("S04", "out")], start=1):
            now = platform.clock.now_ns()
            code = codes.make_code(credential, device, at_s=now // NS, counter=n)
            verdict = verify_code(gate, code, now_s=now // NS)
            assert isinstance(verdict, codes.Accepted)
            taps.append(
                {
                    "seq": n,
                    "token": verdict.token,
                    "station": station,
                    "kind": kind,
                    "at_ns": now,
                    "digest": verdict.digest.hex(),
                    "deny_version": 0,
                }
            )
            world.clock.advance(30 * 60)
        upload = {"gate_clock_ns": platform.clock.now_ns(), "taps": taps}
        first = await client.post("/v1/transit/gates/G1/taps", json=upload, headers=operator)
        again = await client.post("/v1/transit/gates/G1/taps", json=upload, headers=operator)
        assert (first.json(), again.json()) == (
            {"received": 2, "new": 2},
            {"received": 2, "new": 0},
        )
        world.clock.advance(5 * 3600)
        settled = await client.post("/v1/transit/settle", headers=admin)
        assert settled.status_code == 200, settled.text
        assert settled.json()["fares_minor"] == 700
        assert settled.json()["debits_posted"] == 1
        trips = await client.get(
            f"/v1/transit/trips?wallet_card_id={m.wallet_card_id}", headers=user
        )
        [trip] = trips.json()
        assert (trip["status"], trip["fare_minor"], trip["debit_status"]) == (
            "complete",
            700,
            "posted",
        )
        assert [t["kind"] for t in trip["taps"]] == ["in", "out"]
        refused = await client.post(
            f"/v1/transit/trips/{trip['id']}/dispute?wallet_card_id={m.wallet_card_id}",
            json={"to_station": "S02"},
            headers=user,
        )
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "transit_not_disputable"
        rows = (await client.get("/v1/transit/operator/ridership", headers=operator)).json()
        assert rows == [
            {
                "line": "L1",
                "station": "S01",
                "hour": rows[0]["hour"],
                "trips": 1,
                "revenue_minor": 700,
            }
        ]
    with platform.engine.connect() as connection:
        assert bound_cards(connection, wallet_card_ids=[m.wallet_card_id])
