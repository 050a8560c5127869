"""Input an attacker would send, over HTTP on SQLite and PostgreSQL: ids past 63 bits in paths,
bodies, queries and cursors, huge amounts, and values of the wrong JSON type. Each is a named
422 with the usual error object — never a 500, never a traceback in the log, and never read as
something else (``"from_card_id": true`` is not card 1)."""

from __future__ import annotations

import logging

import pytest
from world import PASSWORD, code_of

from flashpay.api.pagination import encode_cursor

pytestmark = pytest.mark.anyio

HUGE_IDS = (2**63, 2**70, 10**30)

USER_PATHS = (
    ("GET", "/v1/cards/{id}"),
    ("DELETE", "/v1/cards/{id}"),
    ("POST", "/v1/cards/{id}/default"),
    ("POST", "/v1/cards/{id}/freeze"),
    ("POST", "/v1/cards/{id}/unfreeze"),
    ("GET", "/v1/cards/{id}/balance"),
    ("POST", "/v1/cards/{id}/payment-code"),
    ("GET", "/v1/transfers/{id}"),
    ("GET", "/v1/transfers/{id}/receipt"),
    ("GET", "/v1/payments/{id}"),
    ("GET", "/v1/payments/{id}/receipt"),
)
MERCHANT_PATHS = (
    ("GET", "/v1/merchant/orders/{id}"),
    ("GET", "/v1/merchant/orders/{id}/qr"),
    ("GET", "/v1/merchant/payments/{id}"),
    ("GET", "/v1/merchant/payments/{id}/receipt"),
    ("POST", "/v1/merchant/payments/{id}/void"),
)
ISSUER_PATHS = (
    ("GET", "/v1/issuer/cards/{id}"),
    ("POST", "/v1/issuer/cards/{id}/freeze"),
    ("POST", "/v1/issuer/cards/{id}/unfreeze"),
    ("POST", "/v1/issuer/cards/{id}/close"),
)
ADMIN_PATHS = (("POST", "/v1/admin/api-keys/{id}/revoke"),)
OPEN_PATHS = (("GET", "/v1/chain/receipts/{id}"),)


def _no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert "unhandled error" not in caplog.text
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def _validation(response, code: str = "validation_error") -> None:
    assert response.status_code == 422, (response.request.url, response.text)
    assert code_of(response) == code
    assert set(response.json()["error"]) == {"code", "message", "details"}


async def test_huge_ids_in_paths_are_422(world, caplog):
    person, card_id = await world.member_with_card()
    merchant = await world.merchant()
    callers = (
        (USER_PATHS, person.headers),
        (MERCHANT_PATHS, merchant["headers"]),
        (ISSUER_PATHS, world.keys["BOC"]),
        (ADMIN_PATHS, world.keys["admin"]),
        (OPEN_PATHS, {}),
    )
    for paths, headers in callers:
        for method, path in paths:
            for huge in HUGE_IDS:
                url = path.format(id=huge)
                _validation(await world.client.request(method, url, headers=headers))
    for method, path, body, headers in (
        ("POST", "/v1/cards/bindings/{id}/confirm", {"otp": "123456"}, person.headers),
        ("POST", "/v1/merchant/payments/{id}/capture", {"amount": "1.00"}, merchant["headers"]),
        ("POST", "/v1/merchant/payments/{id}/refunds", {"amount": "1.00"}, merchant["headers"]),
    ):
        for huge in HUGE_IDS:
            url = path.format(id=huge)
            _validation(await world.client.request(method, url, json=body, headers=headers))
    assert (
        await world.client.get(f"/v1/cards/{card_id}", headers=person.headers)
    ).status_code == 200
    _no_traceback(caplog)


async def test_huge_ids_in_bodies_queries_and_cursors_are_422(world, caplog):
    person, card_id = await world.member_with_card()
    merchant = await world.merchant()
    payload = await world.static_code(merchant)
    friend = await world.signup(world.person("Zhao Lei"))
    for huge in HUGE_IDS:
        sent = await world.transfer(person, from_card_id=huge, amount="1.00", to_phone=friend.phone)
        _validation(sent)
        _validation(await world.pay(person, payload, huge, amount="1.00"))
        keys = await world.client.get(
            "/v1/admin/api-keys", params={"principal_id": huge}, headers=world.keys["admin"]
        )
        _validation(keys)
        for name in ("index", "size", "first", "second", "start"):
            _validation(await world.client.get(_chain_query(name), params={name: huge}))
        for url, headers, position in (
            ("/v1/transfers", person.headers, {"before": huge}),
            ("/v1/payments", person.headers, {"before": huge}),
            ("/v1/merchant/payments", merchant["headers"], {"before": huge}),
            ("/v1/admin/api-keys", world.keys["admin"], {"after": huge}),
        ):
            listed = await world.client.get(
                url, params={"cursor": encode_cursor(position)}, headers=headers
            )
            _validation(listed, "invalid_cursor")
    balance = await world.balance(person, card_id)
    assert balance["available"] == "1000.00"
    _no_traceback(caplog)


def _chain_query(name: str) -> str:
    if name in ("index", "size"):
        return "/v1/chain/proof/inclusion?index=0&size=1"
    if name in ("first", "second"):
        return "/v1/chain/proof/consistency?first=0&second=1"
    return "/v1/chain/leaves"


@pytest.mark.parametrize("amount", ["10000000000.01", "99999999999999999999.00", "1" + "0" * 22])
async def test_huge_amounts_are_422_invalid_amount(world, caplog, amount):
    person, _card_id = await world.member_with_card()
    merchant = await world.merchant()
    order = await world.client.post(
        "/v1/merchant/orders",
        json={"amount": amount, "bill_number": "B-1"},
        headers=merchant["headers"],
    )
    _validation(order, "invalid_amount")
    issued = await world.client.post(
        "/v1/issuer/cards",
        json={"card_number": "6216610200016585", "expiry": "12/30", "holder_name": "Li Wei",
              "holder_id_number": person.id_number, "phone": person.phone,
              "opening_balance": amount},
        headers=world.keys["BOC"],
    )  # fmt: skip
    _validation(issued, "invalid_amount")
    limits = await world.client.put(
        "/v1/me/limits",
        json={"free_per_payment": amount, "qr_daily_limit": amount, "password": PASSWORD},
        headers=person.headers,
    )
    _validation(limits, "invalid_amount")
    _no_traceback(caplog)


async def test_a_json_true_is_not_card_one(world):
    person, card_id = await world.member_with_card()
    assert card_id == 1
    friend, friends_card = await world.member_with_card("Zhao Lei")
    merchant = await world.merchant()
    payload = await world.static_code(merchant)
    for wrong in (True, "1", 1.0, "0x1", [1]):
        sent = await world.transfer(
            person, from_card_id=wrong, amount="1.00", to_phone=friend.phone
        )
        _validation(sent)
        _validation(await world.pay(person, payload, wrong, amount="1.00"))
    assert (await world.balance(person, card_id))["available"] == "1000.00"
    assert (await world.balance(friend, friends_card))["available"] == "1000.00"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/sessions", {"phone": 13800000001, "password": "x" * 8}),
        ("POST", "/v1/users", {"phone": "13800000009", "name": "Li", "id_number": "1" * 18,
                               "password": True}),
        ("PUT", "/v1/me/pin", {"pin": 135790, "password": "correct horse battery"}),
        ("POST", "/v1/transfers", {"from_card_id": 1, "amount": 1.5, "pin": "135790",
                                   "to_phone": "13800000002"}),
        ("POST", "/v1/merchant/orders", {"amount": "1.00", "bill_number": "B",
                                         "expires_in_seconds": "900"}),
        ("POST", "/v1/merchant/orders", {"amount": "1.00", "bill_number": "B",
                                         "expires_in_seconds": True}),
        ("POST", "/v1/merchant/payments", {"code": "x", "amount": "1.00", "capture": "false"}),
        ("POST", "/v1/merchant/payments", {"code": "x", "amount": "1.00", "capture": 0}),
        ("POST", "/v1/merchant/payments", {"code": "x", "amount": "1.00", "hold_seconds": 60.0}),
    ],
)  # fmt: skip
async def test_fields_take_only_their_own_json_type(world, method, path, body):
    person = await world.signup(world.person())
    merchant = await world.merchant()
    headers = merchant["headers"] if path.startswith("/v1/merchant") else person.headers
    response = await world.client.request(method, path, json=body, headers=headers)
    _validation(response)
