"""The wallet end to end over HTTP, on SQLite and PostgreSQL: sign-up, login, PIN, binding cards
from several banks (and every way binding can be refused), balances, freezing, unbinding."""

from __future__ import annotations

import pytest
from world import PASSWORD, PIN, code_of

from flashpay.cards.numbers import generate_card_number
from flashpay.cards.service import reveal_card_number
from flashpay.wallet.policy import CARDS_MAX, OTP_SECONDS

pytestmark = pytest.mark.anyio


async def test_sign_up_login_and_me(world):
    person = await world.signup(world.person("Wang Fang"))
    me = await world.client.get("/v1/me", headers=person.headers)
    assert me.json() == {
        "id": person.user_id,
        "phone": person.phone,
        "name": "Wang Fang",
        "real_name_verified": False,
        "pin_set": True,
    }
    again = await world.client.post(
        "/v1/users",
        json={"phone": person.phone, "name": "X", "id_number": person.id_number,
              "password": PASSWORD},
    )  # fmt: skip
    assert (again.status_code, code_of(again)) == (409, "phone_already_registered")
    wrong = await world.client.post(
        "/v1/sessions", json={"phone": person.phone, "password": "not the password"}
    )
    assert (wrong.status_code, code_of(wrong)) == (401, "invalid_login")
    nobody = await world.client.post(
        "/v1/sessions", json={"phone": "13999999999", "password": PASSWORD}
    )
    assert (nobody.status_code, code_of(nobody)) == (401, "invalid_login")
    login = await world.client.post(
        "/v1/sessions", json={"phone": person.phone, "password": PASSWORD}
    )
    assert login.headers["cache-control"] == "no-store"
    second = {"Authorization": f"Bearer {login.json()['token']}"}
    assert (await world.client.delete("/v1/sessions/current", headers=second)).status_code == 204
    after = await world.client.get("/v1/me", headers=second)
    assert (after.status_code, code_of(after)) == (401, "invalid_credentials")
    assert (await world.client.get("/v1/me", headers=person.headers)).status_code == 200
    login = await world.client.post(
        "/v1/sessions", json={"phone": person.phone, "password": PASSWORD}
    )
    world.clock.advance(24 * 3600 + 1)  # sessions last a day
    expired = await world.client.get(
        "/v1/me", headers={"Authorization": f"Bearer {login.json()['token']}"}
    )
    assert (expired.status_code, code_of(expired)) == (401, "invalid_credentials")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"phone": "12345", "name": "A", "id_number": "110101199001010011", "password": PASSWORD},
         "invalid_phone"),
        ({"phone": "13800000999", "name": "A", "id_number": "1101", "password": PASSWORD},
         "invalid_id_number"),
        ({"phone": "13800000999", "name": "A", "id_number": "110101199001010011",
          "password": "short"}, "weak_password"),
        ({"phone": "13800000999", "name": "A", "id_number": "110101199001010011"},
         "validation_error"),
    ],
    ids=["phone", "id_number", "password", "missing_field"],
)  # fmt: skip
async def test_registration_rejections(world, body, code):
    response = await world.client.post("/v1/users", json=body)
    assert (response.status_code, code_of(response)) == (422, code)


async def test_bind_debit_and_credit_cards_from_three_banks_and_read_balances(world):
    person = await world.signup(world.person("Zhang Min"))
    boc, _ = await world.issue(person, bank="BOC", prefix="621661", balance="2500.00")
    icbc, issued = await world.issue(
        person, bank="ICBC", prefix="625330", balance=None, credit_limit="20000.00"
    )
    cmb, _ = await world.issue(person, bank="CMB", prefix="622588", balance="10.50", length=19)
    debit = await world.bind(person, boc)
    credit = await world.bind(person, icbc, cvv=issued["cvv"])
    third = await world.bind(person, cmb)
    assert [debit["is_default"], credit["is_default"], third["is_default"]] == [True, False, False]
    assert debit["masked_number"] == boc[:6] + "******" + boc[-4:]
    assert (credit["issuer"], credit["card_type"]) == ("ICBC", "credit")
    assert third["masked_number"] == cmb[:6] + "*" * 9 + cmb[-4:]
    listed = await world.client.get("/v1/cards", headers=person.headers)
    assert [c["id"] for c in listed.json()["items"]] == [debit["id"], credit["id"], third["id"]]
    assert await world.balance(person, debit["id"]) == {
        "card_type": "debit",
        "currency": "CNY",
        "available": "2500.00",
        "ledger_balance": "2500.00",
        "credit_limit": None,
        "outstanding": None,
        "pending_authorizations": None,
    }
    assert await world.balance(person, credit["id"]) == {
        "card_type": "credit",
        "currency": "CNY",
        "available": "20000.00",
        "ledger_balance": None,
        "credit_limit": "20000.00",
        "outstanding": "0.00",
        "pending_authorizations": "0.00",
    }
    me = await world.client.get("/v1/me", headers=person.headers)
    assert me.json()["real_name_verified"] is True
    # The vault holds the number encrypted and gives it back only to the issuer's own code.
    assert reveal_card_number(platform=world.platform, card_id=issued["id"]).reveal() == icbc


async def test_otp_goes_to_the_issuers_phone_not_the_apps(world):
    person = await world.signup(world.person())
    pan, _ = await world.issue(person, phone="13911112222")
    started = await world.client.post(
        "/v1/cards/bindings", json={"card_number": pan, "expiry": "12/30"}, headers=person.headers
    )
    assert started.json()["phone_hint"] == "139****2222"
    assert world.notifier.messages[-1].phone == "13911112222"
    assert pan not in world.notifier.messages[-1].text


async def test_binding_rejections(world):
    person = await world.signup(world.person("Chen Jie"))
    stranger = world.person("Someone Else")
    pan, _ = await world.issue(person)
    theirs, _ = await world.issue(stranger)
    credit, issued = await world.issue(
        person, bank="ICBC", prefix="625330", balance=None, credit_limit="500.00"
    )
    expired, _ = await world.issue(person, expiry="01/26")
    unknown_bin = generate_card_number("411111", 16).reveal()
    not_issued = generate_card_number("621661", 16).reveal()
    world.guard.secrets += [unknown_bin, not_issued]
    bad_luhn = pan[:-1] + str((int(pan[-1]) + 1) % 10)
    cases = [
        ({"card_number": bad_luhn, "expiry": "12/30"}, "invalid_card_number"),
        ({"card_number": "6216-61ab", "expiry": "12/30"}, "invalid_card_number"),
        ({"card_number": unknown_bin, "expiry": "12/30"}, "unknown_bin"),
        ({"card_number": not_issued, "expiry": "12/30"}, "card_not_recognised"),
        ({"card_number": pan, "expiry": "11/30"}, "card_not_recognised"),
        ({"card_number": pan, "expiry": "13/30"}, "invalid_expiry"),
        ({"card_number": expired, "expiry": "01/26"}, "card_expired"),
        ({"card_number": credit, "expiry": "12/30"}, "cvv_required"),
        ({"card_number": credit, "expiry": "12/30",
          "cvv": f"{(int(issued['cvv']) + 1) % 1000:03d}"}, "card_not_recognised"),
        ({"card_number": theirs, "expiry": "12/30"}, "real_name_mismatch"),
    ]  # fmt: skip
    for body, code in cases:
        response = await world.client.post("/v1/cards/bindings", json=body, headers=person.headers)
        assert (response.status_code, code_of(response)) == (422, code), body
    await world.bind(person, pan)
    again = await world.client.post(
        "/v1/cards/bindings", json={"card_number": pan, "expiry": "12/30"}, headers=person.headers
    )
    assert (again.status_code, code_of(again)) == (409, "card_already_bound")


async def test_wrong_and_expired_one_time_codes(world):
    person = await world.signup(world.person())
    pan, _ = await world.issue(person)

    async def start() -> tuple[int, str]:
        response = await world.client.post(
            "/v1/cards/bindings", json={"card_number": pan, "expiry": "12/30"},
            headers=person.headers,
        )  # fmt: skip
        binding = response.json()["binding_id"]
        return binding, world.notifier.last_code("card_binding", str(binding))

    binding, otp = await start()
    wrong = f"{(int(otp) + 1) % 10**6:06d}"
    codes = []
    for _ in range(5):
        r = await world.client.post(
            f"/v1/cards/bindings/{binding}/confirm", json={"otp": wrong}, headers=person.headers
        )
        codes.append(code_of(r))
    assert codes == ["wrong_otp"] * 4 + ["otp_attempts_exceeded"]
    closed = await world.client.post(
        f"/v1/cards/bindings/{binding}/confirm", json={"otp": otp}, headers=person.headers
    )
    assert (closed.status_code, code_of(closed)) == (409, "binding_closed")
    binding, otp = await start()
    world.clock.advance(OTP_SECONDS + 1)
    late = await world.client.post(
        f"/v1/cards/bindings/{binding}/confirm", json={"otp": otp}, headers=person.headers
    )
    assert (late.status_code, code_of(late)) == (422, "otp_expired")
    other = await world.signup(world.person())
    binding, otp = await start()
    foreign = await world.client.post(
        f"/v1/cards/bindings/{binding}/confirm", json={"otp": otp}, headers=other.headers
    )
    assert foreign.status_code == 404
    ok = await world.client.post(
        f"/v1/cards/bindings/{binding}/confirm", json={"otp": otp}, headers=person.headers
    )
    assert ok.status_code == 201


async def test_at_most_fifteen_cards(world):
    person = await world.signup(world.person())
    for _ in range(CARDS_MAX):
        pan, _ = await world.issue(person, balance="1.00")
        await world.bind(person, pan)
    pan, _ = await world.issue(person, balance="1.00")
    sixteenth = await world.client.post(
        "/v1/cards/bindings", json={"card_number": pan, "expiry": "12/30"}, headers=person.headers
    )
    assert (sixteenth.status_code, code_of(sixteenth)) == (422, "too_many_cards")
    cards = (await world.client.get("/v1/cards", headers=person.headers)).json()["items"]
    assert len(cards) == CARDS_MAX
    unbound = await world.client.delete(f"/v1/cards/{cards[0]['id']}", headers=person.headers)
    assert unbound.status_code == 204
    await world.bind(person, pan)  # room again after unbinding one


async def test_default_unbind_freeze_and_other_users_get_404(world):
    person = await world.signup(world.person())
    first, _ = await world.issue(person)
    second, _ = await world.issue(person)
    a = await world.bind(person, first)
    b = await world.bind(person, second)
    made = await world.client.post(f"/v1/cards/{b['id']}/default", headers=person.headers)
    assert made.json()["is_default"] is True
    a_now = await world.client.get(f"/v1/cards/{a['id']}", headers=person.headers)
    assert a_now.json()["is_default"] is False
    frozen = await world.client.post(f"/v1/cards/{a['id']}/freeze", headers=person.headers)
    assert frozen.json()["status"] == "frozen"
    thawed = await world.client.post(f"/v1/cards/{a['id']}/unfreeze", headers=person.headers)
    assert thawed.json()["status"] == "active"
    await world.client.delete(f"/v1/cards/{b['id']}", headers=person.headers)
    a_now = await world.client.get(f"/v1/cards/{a['id']}", headers=person.headers)
    assert a_now.json()["is_default"] is True  # the default moved to the remaining card
    gone = await world.client.get(f"/v1/cards/{b['id']}", headers=person.headers)
    assert gone.status_code == 404
    other = await world.signup(world.person())
    for method, path in [
        ("GET", f"/v1/cards/{a['id']}"),
        ("GET", f"/v1/cards/{a['id']}/balance"),
        ("POST", f"/v1/cards/{a['id']}/freeze"),
        ("POST", f"/v1/cards/{a['id']}/default"),
        ("DELETE", f"/v1/cards/{a['id']}"),
    ]:
        response = await world.client.request(method, path, headers=other.headers)
        assert (response.status_code, code_of(response)) == (404, "not_found"), path


async def test_pin_rules_and_lockout(world):
    person = await world.signup(world.person(), pin=None)
    for pin, code in [("12345", "invalid_pin"), ("111111", "weak_pin"), ("12a456", "invalid_pin")]:
        r = await world.client.put(
            "/v1/me/pin", json={"pin": pin, "password": PASSWORD}, headers=person.headers
        )
        assert (r.status_code, code_of(r)) == (422, code)
    r = await world.client.put(
        "/v1/me/pin", json={"pin": PIN, "password": "wrong password!"}, headers=person.headers
    )
    assert (r.status_code, code_of(r)) == (403, "wrong_password")
