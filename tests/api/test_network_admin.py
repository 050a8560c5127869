"""The network definition over HTTP, on SQLite and PostgreSQL: ``PUT /v1/admin/network`` adds
and renames institutions and replaces the BIN table (routing is longest-prefix, observable through
issuing and binding cards); invalid definitions are 422 ``invalid_network_definition`` naming
the path; ``GET /v1/institutions`` is public."""

from __future__ import annotations

import copy
import tomllib
from importlib import resources
from typing import Any

import pytest
from world import code_of

from flashpay.auth import PrincipalKind, create_api_key
from flashpay.cards.numbers import generate_card_number
from flashpay.institutions.service import get_institution

pytestmark = pytest.mark.anyio


def shipped() -> dict[str, Any]:
    text = resources.files("flashpay.institutions").joinpath("default_network.toml").read_text()
    return tomllib.loads(text)


def issuer(data: dict[str, Any], code: str) -> dict[str, Any]:
    return next(i for i in data["issuers"] if i["code"] == code)


def changed_network() -> dict[str, Any]:
    """The shipped network with Bank of China renamed, a new issuer (PSBC) owning its own BIN
    and an 8-digit range inside BOC's 621661, and CCB owning a 7-digit range inside BOC's
    625907."""
    data = copy.deepcopy(shipped())
    issuer(data, "BOC")["name"] = "Bank of China Limited"
    issuer(data, "CCB")["bins"].append({"prefix": "6259071", "type": "credit"})
    data["issuers"].append(
        {
            "code": "PSBC",
            "name": "Postal Savings Bank of China",
            "iin": "01000000",
            "bins": [
                {"prefix": "621799", "type": "debit"},
                {"prefix": "62166188", "type": "debit"},
            ],
        }
    )
    return data


def institution_key(world, code: str) -> dict[str, str]:
    found = get_institution(platform=world.platform, code=code)
    assert found is not None
    key = create_api_key(
        platform=world.platform, kind=PrincipalKind.INSTITUTION, principal_id=found.id
    )
    return {"X-Api-Key": key.key}


async def record(world, key: dict[str, str], person, prefix: str, **extra: str):
    pan = generate_card_number(prefix, 16).reveal()
    world.guard.secrets.append(pan)
    body = {"card_number": pan, "expiry": "12/30", "holder_name": person.name,
            "holder_id_number": person.id_number, "phone": person.phone, **extra}  # fmt: skip
    return pan, await world.client.post("/v1/issuer/cards", json=body, headers=key)


async def test_a_new_definition_adds_renames_and_routes_by_the_longest_prefix(world):
    before = (await world.client.get("/v1/institutions")).json()
    put = await world.client.put(
        "/v1/admin/network", json=changed_network(), headers=world.keys["admin"]
    )
    assert put.status_code == 200, put.text
    # One institution created, the ten known ones (the settlement bank too) updated in place;
    # 11 + 3 BIN ranges; the new issuer's four accounts, its promotion_expense and its settlement
    # deposit, the network's two mirrors of it and the settlement bank's settlement account for it.
    assert put.json() == {
        "institutions_created": 1,
        "institutions_updated": 10,
        "bin_ranges": 14,
        "accounts_created": 9,
    }
    after = (await world.client.get("/v1/institutions")).json()  # public: no credentials
    by_code = {i["code"]: i for i in after}
    assert by_code["BOC"]["name"] == "Bank of China Limited"
    assert by_code["BOC"]["id"] == next(i["id"] for i in before if i["code"] == "BOC")
    assert by_code["PSBC"] == {
        "id": by_code["PSBC"]["id"],
        "code": "PSBC",
        "name": "Postal Savings Bank of China",
        "kind": "issuer",
        "iin": "01000000",
    }
    assert [i["code"] for i in after] == [i["code"] for i in before] + ["PSBC"]

    psbc, ccb = institution_key(world, "PSBC"), institution_key(world, "CCB")
    person = await world.signup(world.person("Zhao Min"))
    # 62166188…: the 8-digit PSBC range beats BOC's 621661, for issuing and for binding.
    _, refused = await record(world, world.keys["BOC"], person, "62166188")
    assert (refused.status_code, code_of(refused)) == (422, "bin_not_yours")
    inside, recorded = await record(world, psbc, person, "62166188", opening_balance="80.00")
    assert recorded.status_code == 201, recorded.text
    bound = await world.bind(person, inside)
    assert (bound["issuer"], bound["issuer_name"]) == ("PSBC", "Postal Savings Bank of China")
    # The rest of 621661 is still Bank of China's, under its new name.
    outside, _ = await world.issue(person, bank="BOC", prefix="62166100")
    boc = await world.bind(person, outside)
    assert (boc["issuer"], boc["issuer_name"]) == ("BOC", "Bank of China Limited")
    # 6259071…: CCB's 7-digit range beats BOC's 6-digit 625907; BOC keeps 6259070.
    _, refused = await record(world, world.keys["BOC"], person, "6259071", credit_limit="100")
    assert (refused.status_code, code_of(refused)) == (422, "bin_not_yours")
    credit, recorded = await record(world, ccb, person, "6259071", credit_limit="100.00")
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["card_type"] == "credit"
    ccb_card = await world.bind(person, credit, cvv=recorded.json()["cvv"])
    assert ccb_card["issuer"] == "CCB"
    _, boc_credit = await record(world, world.keys["BOC"], person, "6259070", credit_limit="1")
    assert boc_credit.status_code == 201, boc_credit.text
    # The new issuer's books work: a cross-bank transfer into PSBC posts through its accounts.
    sender, sender_card = await world.member_with_card("Qian Hao", bank="ICBC", prefix="622202")
    sent = await world.transfer(sender, from_card_id=sender_card, amount="20.00",
                                to_card_number=inside)  # fmt: skip
    assert sent.json()["status"] == "completed", sent.text
    assert (await world.balance(person, bound["id"]))["available"] == "100.00"


async def test_loading_the_same_definition_again_creates_nothing(world):
    for _ in range(2):
        again = await world.client.put(
            "/v1/admin/network", json=shipped(), headers=world.keys["admin"]
        )
        assert again.json() == {
            "institutions_created": 0,
            "institutions_updated": 10,
            "bin_ranges": 11,
            "accounts_created": 0,
        }


async def test_an_institution_left_out_keeps_its_cards_but_loses_its_bins(world):
    person, card = await world.member_with_card("Sun Li", bank="CMB", prefix="622588")
    data = shipped()
    data["issuers"] = [i for i in data["issuers"] if i["code"] != "CMB"]
    put = await world.client.put("/v1/admin/network", json=data, headers=world.keys["admin"])
    assert put.status_code == 200, put.text
    assert "CMB" in {i["code"] for i in (await world.client.get("/v1/institutions")).json()}
    _, refused = await record(world, world.keys["CMB"], person, "622588")
    assert (refused.status_code, code_of(refused)) == (422, "unknown_bin")
    assert (await world.balance(person, card))["available"] == "1000.00"


def _without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


def _invalid_cases() -> list[tuple[str, dict[str, Any], str]]:
    duplicate = copy.deepcopy(shipped())
    duplicate["issuers"][3]["code"] = "ICBC"
    bad_bin = copy.deepcopy(shipped())
    bad_bin["issuers"][1]["bins"][0]["prefix"] = "62220"
    overlap = copy.deepcopy(shipped())
    overlap["issuers"][2]["bins"].append({"prefix": "62312399", "type": "debit"})
    token_bin = copy.deepcopy(shipped())
    token_bin["network"]["token_bin"] = "621661"
    no_issuers = copy.deepcopy(shipped())
    no_issuers["issuers"] = []
    bad_type = copy.deepcopy(shipped())
    bad_type["issuers"][0]["bins"][2]["type"] = "prepaid"
    return [
        ("duplicate_code", duplicate, "issuers[3].code"),
        ("bad_bin", bad_bin, "issuers[1].bins[0].prefix"),
        ("bin_inside_the_token_bin", overlap, "network.token_bin"),
        ("token_bin_is_a_bin", token_bin, "issuers[0].bins[0].prefix"),
        ("no_issuers", no_issuers, "issuers"),
        ("missing_issuers", _without(shipped(), "issuers"), "issuers"),
        ("missing_network", _without(shipped(), "network"), "network"),
        ("bad_card_type", bad_type, "issuers[0].bins[2].type"),
    ]


async def test_invalid_definitions_are_refused_with_their_path(world):
    before = (await world.client.get("/v1/institutions")).json()
    for name, definition, path in _invalid_cases():
        put = await world.client.put(
            "/v1/admin/network", json=definition, headers=world.keys["admin"]
        )
        assert (put.status_code, code_of(put)) == (422, "invalid_network_definition"), name
        assert put.json()["error"]["details"] == {"path": path}, name
        assert put.json()["error"]["message"].startswith(f"{path}: "), name
    assert (await world.client.get("/v1/institutions")).json() == before


async def test_a_body_that_is_not_an_object_is_a_validation_error(world):
    put = await world.client.put("/v1/admin/network", json=[1, 2], headers=world.keys["admin"])
    assert (put.status_code, code_of(put)) == (422, "validation_error")


async def test_changing_an_institutions_kind_is_a_conflict_and_changes_nothing(world):
    data = changed_network()
    acquirer = data["acquirers"].pop(0)  # UMS, an acquirer, declared as an issuer
    data["issuers"].append({**acquirer, "bins": [{"prefix": "621555", "type": "debit"}]})
    put = await world.client.put("/v1/admin/network", json=data, headers=world.keys["admin"])
    assert (put.status_code, code_of(put)) == (409, "network_conflict")
    codes = {i["code"]: i for i in (await world.client.get("/v1/institutions")).json()}
    assert "PSBC" not in codes  # the whole load rolled back
    assert codes["BOC"]["name"] == "Bank of China"
    assert codes["UMS"]["kind"] == "acquirer"


async def test_only_the_network_operator_may_load_a_definition(world):
    anonymous = await world.client.put("/v1/admin/network", json=shipped())
    assert (anonymous.status_code, code_of(anonymous)) == (401, "authentication_required")
    for caller in ("BOC", "UMS", "merchant"):
        put = await world.client.put(
            "/v1/admin/network", json=shipped(), headers=world.keys[caller]
        )
        assert (put.status_code, code_of(put)) == (403, "forbidden"), caller
