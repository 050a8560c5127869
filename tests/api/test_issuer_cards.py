"""``/v1/issuer/cards`` over HTTP, on SQLite and PostgreSQL: every way recording a card is
refused, recording the same card twice, the CVV shown once and never kept, and the card's life
(freeze, unfreeze, close — a closed card stays closed) as the wallet and P2P see it."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from world import code_of

from flashpay.api.models import idempotency_keys
from flashpay.cards.numbers import generate_card_number

pytestmark = pytest.mark.anyio


def new_pan(world, prefix: str, length: int = 16) -> str:
    pan = generate_card_number(prefix, length).reveal()
    world.guard.secrets.append(pan)
    return pan


def card_body(person, pan: str, **extra: Any) -> dict[str, Any]:
    body = {"card_number": pan, "expiry": "12/30", "holder_name": person.name,
            "holder_id_number": person.id_number, "phone": person.phone}  # fmt: skip
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}


async def test_recording_a_card_is_refused_for_each_reason(world):
    person = world.person("Zhou Yan")
    boc = world.keys["BOC"]
    good = new_pan(world, "621661")
    bad_luhn = good[:-1] + str((int(good[-1]) + 1) % 10)
    cases = [
        ("luhn", card_body(person, bad_luhn, opening_balance="1.00"), 422, "invalid_card_number"),
        ("letters", card_body(person, "6216-61ab-0000-0000"), 422, "invalid_card_number"),
        ("too_short", card_body(person, "621661000001"), 422, "invalid_card_number"),
        ("unknown_bin", card_body(person, new_pan(world, "411111")), 422, "unknown_bin"),
        ("token_bin", card_body(person, new_pan(world, "623123")), 422, "unknown_bin"),
        ("icbc_bin", card_body(person, new_pan(world, "622202")), 422, "bin_not_yours"),
        ("credit_without_limit", card_body(person, new_pan(world, "625907")), 422,
         "invalid_credit_limit"),
        ("credit_zero_limit", card_body(person, new_pan(world, "625907"), credit_limit="0"), 422,
         "invalid_credit_limit"),
        ("credit_with_balance", card_body(person, new_pan(world, "625907"), credit_limit="10",
                                          opening_balance="5"), 422, "invalid_amount"),
        ("debit_with_limit", card_body(person, good, credit_limit="10.00"), 422,
         "invalid_amount"),
        ("negative_balance", card_body(person, good, opening_balance="-1.00"), 422,
         "invalid_amount"),
        ("fraction_of_a_fen", card_body(person, good, opening_balance="1.001"), 422,
         "invalid_amount"),
        ("expiry_month_13", card_body(person, good, expiry="13/30"), 422, "invalid_expiry"),
        ("expiry_yymm", card_body(person, good, expiry="3012"), 422, "invalid_expiry"),
        ("statement_day_31", card_body(person, good, statement_day=31), 422, "validation_error"),
        ("extra_field", card_body(person, good, cvv="123"), 422, "validation_error"),
    ]  # fmt: skip
    for name, body, status, code in cases:
        response = await world.client.post("/v1/issuer/cards", json=body, headers=boc)
        assert (response.status_code, code_of(response)) == (status, code), name
    # None of them recorded anything: the good number is still free to record.
    response = await world.client.post(
        "/v1/issuer/cards", json=card_body(person, good, opening_balance="1.00"), headers=boc
    )
    assert response.status_code == 201, response.text


async def test_only_issuers_record_cards(world):
    person = world.person()
    body = card_body(person, new_pan(world, "621661"), opening_balance="1.00")
    anonymous = await world.client.post("/v1/issuer/cards", json=body)
    assert (anonymous.status_code, code_of(anonymous)) == (401, "authentication_required")
    for caller in ("UMS", "admin", "merchant"):  # an acquirer and the network are not issuers
        response = await world.client.post(
            "/v1/issuer/cards", json=body, headers=world.keys[caller]
        )
        assert (response.status_code, code_of(response)) == (403, "forbidden"), caller
    user = await world.signup(world.person("Wu Lei"))
    response = await world.client.post("/v1/issuer/cards", json=body, headers=user.headers)
    assert (response.status_code, code_of(response)) == (403, "forbidden")


async def test_the_same_card_twice(world):
    person = world.person("Xu Ping")
    boc = world.keys["BOC"]
    pan = new_pan(world, "621661")
    body = card_body(person, pan, opening_balance="250.00", statement_day=None)
    first = await world.client.post("/v1/issuer/cards", json=body, headers=boc)
    again = await world.client.post("/v1/issuer/cards", json=body, headers=boc)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()  # the same card, the same id; the deposit made once
    different = [
        ("expiry", {"expiry": "11/30"}),
        ("phone", {"phone": "13912340000"}),
        ("opening_balance", {"opening_balance": "251.00"}),
    ]
    for name, change in different:
        response = await world.client.post("/v1/issuer/cards", json={**body, **change},
                                           headers=boc)  # fmt: skip
        assert (response.status_code, code_of(response)) == (409, "card_exists"), name
    credit_pan = new_pan(world, "625907")
    credit = card_body(person, credit_pan, credit_limit="800.00")
    assert (
        await world.client.post("/v1/issuer/cards", json=credit, headers=boc)
    ).status_code == 201
    raised = await world.client.post(
        "/v1/issuer/cards", json={**credit, "credit_limit": "900.00"}, headers=boc
    )
    assert (raised.status_code, code_of(raised)) == (409, "card_exists")
    # Another bank cannot record it either (its BIN is not theirs).
    icbc = await world.client.post("/v1/issuer/cards", json=body, headers=world.keys["ICBC"])
    assert (icbc.status_code, code_of(icbc)) == (422, "bin_not_yours")
    # The holder binds it and sees the balance once: ¥250.00.
    user = await world.signup(person)
    card = await world.bind(user, pan)
    assert (await world.balance(user, card["id"]))["available"] == "250.00"


async def test_the_cvv_is_shown_once_and_never_kept(world):
    person = world.person("He Jun")
    pan = new_pan(world, "625330")
    body = card_body(person, pan, credit_limit="2000.00", statement_day=5)
    headers = {**world.keys["ICBC"], "Idempotency-Key": "issue-he-jun-1"}
    first = await world.client.post("/v1/issuer/cards", json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert first.headers["cache-control"] == "no-store"
    issued = first.json()
    assert len(issued["cvv"]) == 3
    assert issued["cvv"].isdigit()
    assert issued["masked_number"] == pan[:6] + "******" + pan[-4:]
    assert (issued["card_type"], issued["credit_limit"], issued["expiry"], issued["status"]) == (
        "credit",
        "2000.00",
        "12/30",
        "active",
    )
    # Not kept for idempotent replay: the retry runs again (and the issuer sees its CVV again,
    # computed from the key, not read back from anywhere).
    with world.platform.engine.connect() as connection:
        kept = connection.execute(sa.select(sa.func.count()).select_from(idempotency_keys))
        assert kept.scalar_one() == 0
    retry = await world.client.post("/v1/issuer/cards", json=body, headers=headers)
    assert retry.status_code == 201
    assert "idempotent-replayed" not in retry.headers
    assert retry.json() == issued
    # Reads and state changes never carry it.
    path = f"/v1/issuer/cards/{issued['id']}"
    for response in (
        await world.client.get(path, headers=world.keys["ICBC"]),
        await world.client.post(f"{path}/freeze", headers=world.keys["ICBC"]),
        await world.client.post(f"{path}/unfreeze", headers=world.keys["ICBC"]),
    ):
        assert response.status_code == 200
        assert "cvv" not in response.json()
        assert {k: v for k, v in response.json().items() if k != "status"} == {
            k: v for k, v in issued.items() if k not in ("cvv", "status")
        }
    # Nothing in the database holds it: the card row has no CVV, and binding checks it.
    user = await world.signup(person)
    bound = await world.bind(user, pan, cvv=issued["cvv"])
    assert bound["card_type"] == "credit"


async def test_freeze_unfreeze_close_and_a_closed_card_stays_closed(world):
    alice = await world.signup(world.person("Alice"))
    pan, issued = await world.issue(alice, bank="BOC", prefix="621661")
    alice_card = (await world.bind(alice, pan))["id"]
    bob, bob_card = await world.member_with_card("Bob", bank="ICBC", prefix="622202")
    issuer_id = issued["id"]
    path = f"/v1/issuer/cards/{issuer_id}"
    boc = world.keys["BOC"]

    async def status(action: str) -> str:
        response = await world.client.post(f"{path}/{action}", headers=boc)
        assert response.status_code == 200, response.text
        return str(response.json()["status"])

    async def send() -> str:
        response = await world.transfer(alice, from_card_id=alice_card, amount="1.00",
                                        to_phone=bob.phone)  # fmt: skip
        assert response.status_code == 201, response.text
        return str(response.json()["decline_reason"] or response.json()["status"])

    assert await status("freeze") == "frozen"
    assert await send() == "card_frozen"  # the issuer's freeze declines a P2P from the card
    # The wallet still shows the card as the user left it; the issuer's state decides.
    assert (await world.client.get(f"/v1/cards/{alice_card}", headers=alice.headers)).json()[
        "status"
    ] == "active"
    assert await status("freeze") == "frozen"  # freezing twice is harmless
    assert await status("unfreeze") == "active"
    assert await send() == "completed"
    # Money can still come in while the card is active; not once it is frozen.
    assert await status("freeze") == "frozen"
    incoming = await world.transfer(bob, from_card_id=bob_card, amount="1.00", to_phone=alice.phone)
    assert incoming.json()["decline_reason"] == "recipient_unavailable"
    assert await status("close") == "closed"
    assert await send() == "card_closed"
    for action in ("unfreeze", "freeze"):
        assert await status(action) == "closed"  # a closed card stays closed
    read = await world.client.get(path, headers=boc)
    assert read.json()["status"] == "closed"
    assert (await world.balance(alice, alice_card))["available"] == "999.00"


async def test_another_issuers_card_is_not_found(world):
    _, issued = await world.issue(world.person("Lin Tao"), bank="BOC", prefix="621785")
    path = f"/v1/issuer/cards/{issued['id']}"
    for method, suffix in (("GET", ""), ("POST", "/freeze"), ("POST", "/unfreeze"),
                           ("POST", "/close")):  # fmt: skip
        response = await world.client.request(method, path + suffix, headers=world.keys["ICBC"])
        assert (response.status_code, code_of(response)) == (404, "not_found"), suffix
    missing = await world.client.get("/v1/issuer/cards/999999", headers=world.keys["BOC"])
    assert (missing.status_code, code_of(missing)) == (404, "not_found")
    still = await world.client.get(path, headers=world.keys["BOC"])
    assert still.json()["status"] == "active"


async def test_a_closed_card_cannot_be_bound(world):
    person = await world.signup(world.person("Ma Rui"))
    pan, issued = await world.issue(person, bank="CMB", prefix="622588")
    await world.client.post(f"/v1/issuer/cards/{issued['id']}/close", headers=world.keys["CMB"])
    started = await world.client.post(
        "/v1/cards/bindings", json={"card_number": pan, "expiry": "12/30"}, headers=person.headers
    )
    assert (started.status_code, code_of(started)) == (422, "card_closed")
