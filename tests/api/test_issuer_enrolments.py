"""``POST /v1/issuer/enrolments``: an issuer enrols its cardholders' cards over HTTP (decision
0012), on SQLite and PostgreSQL — per-card results in order, re-sending harmless, an
``Idempotency-Key`` replayed, every wrong input refused with the card's index and nothing
written. Who may call it at all is in the authorization matrix (test_api_authorization.py)."""

from __future__ import annotations

import pytest
from world import code_of

from flashpay.wallet.enrolment import ENROL_BATCH_MAX

pytestmark = pytest.mark.anyio

ENROL = "/v1/issuer/enrolments"


async def test_an_issuer_enrols_cards_into_their_holders_wallets(world):
    li = await world.signup(world.person("Li Wei"))
    wang = await world.signup(world.person("Wang Fang"))
    _, li_debit = await world.issue(li, balance="10.00")
    _, li_credit = await world.issue(li, prefix="625907", credit_limit="5000.00")
    _, wang_card = await world.issue(wang, balance="20.00")
    card_ids = [li_debit["id"], wang_card["id"], li_credit["id"]]

    response = await world.client.post(
        ENROL, json={"card_ids": card_ids}, headers=world.keys["BOC"]
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["cards"] == 3
    assert [r["index"] for r in body["results"]] == [0, 1, 2]
    assert [r["card_id"] for r in body["results"]] == card_ids
    assert [r["masked_number"] for r in body["results"]] == [
        li_debit["masked_number"], wang_card["masked_number"], li_credit["masked_number"],
    ]  # fmt: skip
    assert [r["is_default"] for r in body["results"]] == [True, True, False]
    li_wallet = (await world.client.get("/v1/cards", headers=li.headers)).json()["items"]
    assert sorted(c["id"] for c in li_wallet) == sorted(
        [body["results"][0]["wallet_card_id"], body["results"][2]["wallet_card_id"]]
    )
    balance = await world.balance(wang, body["results"][1]["wallet_card_id"])
    assert balance["available"] == "20.00"

    again = await world.client.post(
        ENROL, json={"card_ids": [wang_card["id"], wang_card["id"]]}, headers=world.keys["BOC"]
    )
    assert again.status_code == 200
    assert [r["wallet_card_id"] for r in again.json()["results"]] == [
        body["results"][1]["wallet_card_id"]
    ] * 2
    assert again.json()["cards"] == 1
    assert world.notifier.messages == []  # issuer enrolment sends no one-time code


async def test_a_retry_with_the_same_idempotency_key_is_replayed(world):
    li = await world.signup(world.person())
    _, card = await world.issue(li)
    headers = world.keys["BOC"] | {"Idempotency-Key": "enrol-file-2026-11-18"}
    first = await world.client.post(ENROL, json={"card_ids": [card["id"]]}, headers=headers)
    retried = await world.client.post(ENROL, json={"card_ids": [card["id"]]}, headers=headers)
    assert first.status_code == retried.status_code == 200
    assert retried.content == first.content
    assert retried.headers["idempotent-replayed"] == "true"
    _, other = await world.issue(li)
    reused = await world.client.post(ENROL, json={"card_ids": [other["id"]]}, headers=headers)
    assert reused.status_code == 422
    assert code_of(reused) == "idempotency_key_reused"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="no card_ids"),
        pytest.param({"card_ids": []}, id="an empty batch"),
        pytest.param({"card_ids": list(range(1, ENROL_BATCH_MAX + 2))}, id="one card too many"),
        pytest.param({"card_ids": [0]}, id="a zero id"),
        pytest.param({"card_ids": [-3]}, id="a negative id"),
        pytest.param({"card_ids": [2**63]}, id="an id beyond BIGINT"),
        pytest.param({"card_ids": ["6216610200016585"]}, id="a card number instead of an id"),
        pytest.param({"card_ids": [1.5]}, id="a fraction"),
        pytest.param({"card_ids": [2.0]}, id="a float"),
        pytest.param({"card_ids": ["12"]}, id="a string"),
        pytest.param({"card_ids": [1], "phone": "13800000001"}, id="an unknown field"),
        pytest.param({"card_ids": "1,2"}, id="not a list"),
    ],
)
async def test_a_malformed_request_is_a_422(world, body):
    response = await world.client.post(ENROL, json=body, headers=world.keys["BOC"])
    assert response.status_code == 422
    assert code_of(response) == "validation_error"
    assert "6216610200016585" not in response.text  # never echoed


@pytest.mark.parametrize(
    ("problem", "status", "code"),
    [
        pytest.param("unknown", 404, "not_found", id="no such card"),
        pytest.param("other_bank", 404, "not_found", id="another bank's card"),
        pytest.param("expired", 422, "card_expired", id="an expired card"),
        pytest.param("closed", 422, "card_closed", id="a closed card"),
        pytest.param("no_wallet", 404, "wallet_not_found", id="no wallet has the card's phone"),
        pytest.param("other_name", 422, "real_name_mismatch", id="the holder is someone else"),
    ],
)
async def test_a_refused_card_names_its_index_and_nothing_is_enrolled(world, problem, status,
                                                                      code):  # fmt: skip
    li = await world.signup(world.person("Li Wei"))
    _, good = await world.issue(li)
    if problem == "unknown":
        bad_id = 10**12
    elif problem == "other_bank":
        _, bad = await world.issue(li, bank="ICBC", prefix="622202", length=19)
        bad_id = bad["id"]
    elif problem == "expired":
        _, bad = await world.issue(li, expiry="01/26")
        bad_id = bad["id"]
    elif problem == "closed":
        _, bad = await world.issue(li)
        closed = await world.client.post(f"/v1/issuer/cards/{bad['id']}/close",
                                         headers=world.keys["BOC"])  # fmt: skip
        assert closed.status_code == 200
        bad_id = bad["id"]
    elif problem == "no_wallet":
        _, bad = await world.issue(li, phone="13999999999")
        bad_id = bad["id"]
    else:
        stranger = world.person("Zhang San")
        stranger.phone = li.phone  # the bank has Zhang San's card with Li Wei's phone
        _, bad = await world.issue(stranger)
        bad_id = bad["id"]

    response = await world.client.post(
        ENROL, json={"card_ids": [good["id"], bad_id]}, headers=world.keys["BOC"]
    )

    assert response.status_code == status, response.text
    assert code_of(response) == code
    assert response.json()["error"]["details"] == {"index": 1}  # the id is not echoed
    assert response.json()["error"]["message"].startswith("card_ids[1]: ")
    wallet = (await world.client.get("/v1/cards", headers=li.headers)).json()["items"]
    assert wallet == []  # all or nothing: the good card was not enrolled either


async def test_only_the_cards_issuer_may_enrol_them(world):
    li = await world.signup(world.person())
    _, card = await world.issue(li)
    icbc = await world.client.post(ENROL, json={"card_ids": [card["id"]]},
                                   headers=world.keys["ICBC"])  # fmt: skip
    assert (icbc.status_code, code_of(icbc)) == (404, "not_found")
    for caller in ("admin", "UMS", "merchant"):
        refused = await world.client.post(ENROL, json={"card_ids": [card["id"]]},
                                          headers=world.keys[caller])  # fmt: skip
        assert (refused.status_code, code_of(refused)) == (403, "forbidden"), caller
    as_user = await world.client.post(ENROL, json={"card_ids": [card["id"]]}, headers=li.headers)
    assert as_user.status_code == 403
    anonymous = await world.client.post(ENROL, json={"card_ids": [card["id"]]})
    assert (anonymous.status_code, code_of(anonymous)) == (401, "authentication_required")
    assert (await world.client.get("/v1/cards", headers=li.headers)).json()["items"] == []
