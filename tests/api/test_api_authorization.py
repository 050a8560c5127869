"""The authorization matrix: every route of the app × every kind of caller → the right status.

The table is checked against the app's routes (its OpenAPI operations): a route without an entry
(or an entry without a route) fails the test, so a new endpoint cannot ship without deciding who
may call it.

Callers: ``anonymous``; the ``owner`` of the resources in the path (a wallet user, or for issuer
routes the issuing bank); ``other_user``, another wallet user; a ``merchant`` key; the
``issuer`` key of the bank that issued the card in the path; ``other_issuer``, another bank's
key; ``admin``, the network operator's key (an institution, but not an issuer). Someone else's
card, binding or transfer is a 404, never a 403; the wrong kind of caller is a 403.
"""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest
from world import PASSWORD, PIN, open_world

from flashpay.api.app import create_platform_app
from flashpay.auth import PrincipalKind, create_api_key
from flashpay.cards.numbers import generate_card_number
from flashpay.chain.service import ChainLog
from flashpay.keys import KeyRing
from flashpay.platform import Platform

pytestmark = pytest.mark.anyio

# Callers in the order they call each route: the owner and the issuer last, so a route that
# changes or deletes its resource does so after everyone else was refused.
CALLERS = ("anonymous", "other_user", "merchant", "other_issuer", "admin", "issuer", "owner")

# (method, path template) -> expected status per caller, in CALLERS order.
# fmt: off
MATRIX: dict[tuple[str, str], tuple[int, ...]] = {
    ("GET", "/v1/health"):                                 (200, 200, 200, 200, 200, 200, 200),
    ("GET", "/v1/ready"):                                  (200, 200, 200, 200, 200, 200, 200),
    ("GET", "/v1/admin/api-keys"):                         (401, 403, 403, 403, 200, 403, 403),
    ("POST", "/v1/admin/api-keys/{key_id}/revoke"):        (401, 403, 403, 403, 200, 403, 403),
    ("PUT", "/v1/admin/network"):                          (401, 403, 403, 403, 200, 403, 403),
    ("GET", "/v1/institutions"):                           (200, 200, 200, 200, 200, 200, 200),
    ("POST", "/v1/users"):                                 (201, 201, 201, 201, 201, 201, 201),
    ("POST", "/v1/sessions"):                              (201, 201, 201, 201, 201, 201, 201),
    ("GET", "/v1/me"):                                     (401, 200, 403, 403, 403, 403, 200),
    ("PUT", "/v1/me/pin"):                                 (401, 204, 403, 403, 403, 403, 204),
    ("POST", "/v1/cards/bindings"):                        (401, 422, 403, 403, 403, 403, 201),
    ("POST", "/v1/cards/bindings/{binding_id}/confirm"):   (401, 404, 403, 403, 403, 403, 201),
    ("GET", "/v1/cards"):                                  (401, 200, 403, 403, 403, 403, 200),
    ("GET", "/v1/cards/{card_id}"):                        (401, 404, 403, 403, 403, 403, 200),
    ("DELETE", "/v1/cards/{card_id}"):                     (401, 404, 403, 403, 403, 403, 204),
    ("POST", "/v1/cards/{card_id}/default"):               (401, 404, 403, 403, 403, 403, 200),
    ("POST", "/v1/cards/{card_id}/freeze"):                (401, 404, 403, 403, 403, 403, 200),
    ("POST", "/v1/cards/{card_id}/unfreeze"):              (401, 404, 403, 403, 403, 403, 200),
    ("GET", "/v1/cards/{card_id}/balance"):                (401, 404, 403, 403, 403, 403, 200),
    ("POST", "/v1/transfers"):                             (401, 404, 403, 403, 403, 403, 201),
    ("GET", "/v1/transfers"):                              (401, 200, 403, 403, 403, 403, 200),
    ("GET", "/v1/transfers/{transfer_id}"):                (401, 404, 403, 403, 403, 403, 200),
    ("GET", "/v1/transfers/{transfer_id}/receipt"):        (401, 404, 403, 403, 403, 403, 200),
    ("POST", "/v1/issuer/cards"):                          (401, 403, 403, 422, 403, 201, 403),
    ("GET", "/v1/issuer/cards/{card_id}"):                 (401, 403, 403, 404, 403, 200, 403),
    ("POST", "/v1/issuer/cards/{card_id}/freeze"):         (401, 403, 403, 404, 403, 200, 403),
    ("POST", "/v1/issuer/cards/{card_id}/unfreeze"):       (401, 403, 403, 404, 403, 200, 403),
    ("POST", "/v1/issuer/cards/{card_id}/close"):          (401, 403, 403, 404, 403, 200, 403),
    # The audit log is public to the members' network (decision 0006); the log here is empty.
    ("GET", "/v1/chain/checkpoint"):                       (404, 404, 404, 404, 404, 404, 404),
    ("GET", "/v1/chain/proof/inclusion"):                  (400, 400, 400, 400, 400, 400, 400),
    ("GET", "/v1/chain/proof/consistency"):                (200, 200, 200, 200, 200, 200, 200),
    ("GET", "/v1/chain/leaves"):                           (200, 200, 200, 200, 200, 200, 200),
    ("GET", "/v1/chain/receipts/{chain_id}"):              (404, 404, 404, 404, 404, 404, 404),
}
# fmt: on
QUERIES = {
    "/v1/chain/proof/inclusion": "?index=0&size=1",
    "/v1/chain/proof/consistency": "?first=0&second=0",
}


def _routes(app) -> set[tuple[str, str]]:
    """Every operation of the app, from its OpenAPI document (which FastAPI builds from routes)."""
    return {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }


def test_every_route_has_an_entry_and_every_entry_a_route(sqlite_url):
    platform = Platform.open(sqlite_url, keys=KeyRing.generate())
    log = ChainLog.open(sqlite_url)
    app = create_platform_app(platform, request_hash_key=b"k" * 32, chain_log=log)
    assert _routes(app) == set(MATRIX)
    log.close()
    platform.close()


def _default_network_json() -> dict:
    text = resources.files("flashpay.institutions").joinpath("default_network.toml").read_text()
    return tomllib.loads(text)


async def test_authorization_matrix(database_url, leak_guard):
    async with open_world(database_url, leak_guard) as world:
        other = await world.signup(world.person("Other"))
        headers = {
            "anonymous": {},
            "other_user": other.headers,
            "merchant": world.keys["merchant"],
            "issuer": world.keys["BOC"],
            "other_issuer": world.keys["ICBC"],
            "admin": world.keys["admin"],
        }
        peer, _ = await world.member_with_card("Peer")
        failures = []
        for (method, template), expected in MATRIX.items():
            # Fresh resources per route, owned by a fresh ``owner`` (cards issued by BOC).
            owner = await world.signup(world.person("Owner"))
            headers["owner"] = owner.headers
            pan, issued = await world.issue(owner, balance="100.00")
            card = await world.bind(owner, pan)
            spare, _ = await world.issue(owner, balance="1.00")
            binding = await world.client.post(
                "/v1/cards/bindings",
                json={"card_number": spare, "expiry": "12/30"},
                headers=owner.headers,
            )
            binding_id = binding.json()["binding_id"]
            otp = world.notifier.last_code("card_binding", str(binding_id))
            sent = await world.transfer(owner, from_card_id=card["id"], amount="1.00",
                                        to_phone=peer.phone)  # fmt: skip
            key = create_api_key(platform=world.platform, kind=PrincipalKind.MERCHANT,
                                 principal_id=7)  # fmt: skip
            unbound, _ = await world.issue(owner, balance="1.00")
            context = {"card_id": card["id"], "peer": peer, "otp": otp, "unbound": unbound}
            path = template.format(
                card_id=issued["id"] if template.startswith("/v1/issuer") else card["id"],
                binding_id=binding_id,
                transfer_id=sent.json()["id"],
                key_id=key.key_id,
                chain_id=1,
            ) + QUERIES.get(template, "")
            for caller, status in zip(CALLERS, expected, strict=True):
                body = _body(world, method, template, owner, context)
                response = await world.client.request(
                    method, path, json=body, headers=headers[caller]
                )
                if response.status_code != status:
                    failures.append(
                        (method, template, caller, status, response.status_code, response.text)
                    )
        assert failures == []


_counter = iter(range(10**6))


def _body(world, method, template, owner, context):
    n = next(_counter)
    if template == "/v1/users":
        return {"phone": f"1370000{n:04d}", "name": "New", "id_number": "110101199001019999",
                "password": PASSWORD}  # fmt: skip
    if template == "/v1/sessions":
        return {"phone": owner.phone, "password": PASSWORD}
    if template == "/v1/me/pin":
        return {"pin": PIN, "password": PASSWORD}
    if template == "/v1/cards/bindings":
        return {"card_number": context["unbound"], "expiry": "12/30"}
    if template.endswith("/confirm"):
        return {"otp": context["otp"]}
    if template == "/v1/transfers" and method == "POST":
        return {"from_card_id": context["card_id"], "amount": "1.00",
                "to_phone": context["peer"].phone, "pin": PIN}  # fmt: skip
    if template == "/v1/issuer/cards":
        pan = generate_card_number("621661", 16).reveal()
        world.guard.secrets.append(pan)
        return {"card_number": pan, "expiry": "12/30", "holder_name": "New Holder",
                "holder_id_number": "110101199001019999", "phone": "13600000000",
                "opening_balance": "1.00"}  # fmt: skip
    if template == "/v1/admin/network":
        return _default_network_json()
    return None
