"""Campaign management over HTTP, on SQLite and PostgreSQL (issue 15, item 6 and the bad-input
list): each bad definition is a named rejection, a second funder can do nothing to the first's
campaign, a merchant funds its own, and the report counts uses, discount and volume by scene,
bank and day."""

from __future__ import annotations

from typing import Any

import pytest
from test_promotions_api import CAMPAIGNS, act, create, definition
from test_promotions_inquiry import pay, pay_context, running
from world import code_of

from flashpay.institutions.service import get_institution

pytestmark = pytest.mark.anyio


def _id(world: Any, code: str) -> int:
    institution = get_institution(platform=world.platform, code=code)
    assert institution is not None
    return institution.id


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"benefit": {"kind": "amount_off", "off_minor": 0}}, 422, "promo_invalid_benefit"),
        ({"benefit": {"kind": "amount_off", "off_minor": -500}}, 422, "promo_invalid_benefit"),
        ({"benefit": {"kind": "percent_off", "rate_bps": 0}}, 422, "promo_invalid_benefit"),
        ({"benefit": {"kind": "percent_off", "rate_bps": 10_001}}, 422, "promo_invalid_benefit"),
        ({"benefit": {"kind": "random_off", "low_minor": 500, "high_minor": 100}}, 422,
         "promo_invalid_benefit"),
        ({"windows": [{"start": "13:30", "end": "11:00"}]}, 422, "promo_invalid_window"),
        ({"starts_at": "2026-12-31T00:00:00+08:00", "ends_at": "2026-12-01T00:00:00+08:00"}, 422,
         "promo_invalid_period"),
        ({"budget": {"money_minor": 0}}, 422, "promo_invalid_budget"),
        ({"funder": {"kind": "issuer", "id": "ICBC"}}, 403, "promo_not_funder"),
        ({"funder": {"kind": "network", "id": "CUP"}}, 403, "promo_not_funder"),
    ],
)  # fmt: skip
async def test_a_bad_definition_is_a_named_rejection(world, fields, status, code):
    if "funder" in fields:  # another institution's books, by its id
        fields = {"funder": {**fields["funder"], "id": _id(world, fields["funder"]["id"])}}
    refused = await create(world, "BOC", definition(**fields), key="bad")
    assert (refused.status_code, code_of(refused)) == (status, code), refused.text
    listed = await world.client.get(CAMPAIGNS, headers=world.keys["BOC"])
    assert listed.json()["items"] == []


async def test_overlapping_exclusive_campaigns_of_one_funder_are_refused(world):
    first = await running(world, "BOC", definition(name="first"), "first")
    second = (await create(world, "BOC", definition(name="second"), key="second")).json()["id"]
    refused = await act(world, "BOC", second, "activate")
    assert (refused.status_code, code_of(refused)) == (409, "promo_overlapping_exclusive")
    assert refused.json()["error"]["details"]["overlaps"] == first
    canteens = definition(name="canteens", eligibility={"scenes": ["canteen"]})
    await running(world, "BOC", canteens, "canteens")  # no common scene: no clash
    await running(world, "ICBC", definition(name="ICBC's"), "icbc")  # another funder: the rule
    assert (await act(world, "BOC", first, "end")).status_code == 200
    assert (await act(world, "BOC", second, "activate")).status_code == 200


async def test_a_second_funder_can_do_nothing_to_the_first_funders_campaign(world):
    coupons = definition(coupon={"valid_seconds": 3600, "claimable": False})
    campaign_id = await running(world, "BOC", coupons, "boc")
    url = f"{CAMPAIGNS}/{campaign_id}"
    for funder in ("ICBC", "UMS", "admin"):
        headers = world.keys[funder]
        for response in (
            await world.client.get(url, headers=headers),
            await world.client.get(f"{url}/report", headers=headers),
            await world.client.post(f"{url}/activate", headers=headers),
            await world.client.post(f"{url}/pause", headers=headers),
            await world.client.post(f"{url}/end", headers=headers),
            await world.client.post(f"{url}/top-ups", json={"uses": 5}, headers=headers),
            await world.client.post(f"{url}/coupon-pushes", json={"phones": ["13800000001"]},
                                    headers=headers),
        ):  # fmt: skip
            assert (response.status_code, code_of(response)) == (404, "promo_campaign_not_found")
    mine = await world.client.get(url, headers=world.keys["BOC"])
    assert (mine.json()["state"], mine.json()["budget"]["uses_max"]) == ("active", 100)


async def test_a_merchant_funds_its_own_campaign_and_the_report_adds_up(world):
    shop = await world.merchant("Wumart", scene="supermarket")
    other = await world.merchant("Carrefour", scene="supermarket")
    body = definition(name="Wumart ¥5 off", benefit={"kind": "amount_off", "off_minor": 500},
                      budget={"money_minor": 10_000})  # fmt: skip
    headers = {**shop["headers"], "Idempotency-Key": "m"}
    created = await world.client.post(CAMPAIGNS, json=body, headers=headers)
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]
    assert created.json()["funder"] == {"kind": "merchant", "id": shop["id"]}
    someone_else = {**body, "funder": {"kind": "merchant", "id": other["id"]}}
    refused = await world.client.post(CAMPAIGNS, json=someone_else, headers=shop["headers"])
    assert (refused.status_code, code_of(refused)) == (403, "promo_not_funder")
    activated = await world.client.post(f"{CAMPAIGNS}/{campaign_id}/activate",
                                        headers=shop["headers"])  # fmt: skip
    assert activated.status_code == 200, activated.text

    boc, icbc = _id(world, "BOC"), _id(world, "ICBC")
    assert pay(world, pay_context(world, shop, phone="13900000001", ref="a")) == 500
    icbc_card = {"issuer_id": icbc, "bin": "622202"}
    assert pay(world, pay_context(world, shop, phone="13900000002", ref="b", amount=8000,
                                  **icbc_card)) == 500  # fmt: skip
    with world.platform.engine.begin() as connection:  # at the other shop: not this campaign
        from flashpay.promotions import quote
        from flashpay.promotions_api import draw_key

        elsewhere = pay_context(world, other, phone="13900000003", ref="c")
        choice = quote(connection, context=elsewhere, draw_key=draw_key(world.platform))
    assert choice.applied == ()
    report = await world.client.get(f"{CAMPAIGNS}/{campaign_id}/report", headers=shop["headers"])
    assert report.status_code == 200, report.text
    r = report.json()
    assert (r["uses"], r["discount"], r["volume"], r["money_left"]) == (
        2, "10.00", "140.00", "90.00",
    )  # fmt: skip
    assert [(x["key"], x["uses"]) for x in r["by_scene"]] == [("supermarket", 2)]
    assert sorted((x["key"], x["discount_minor"]) for x in r["by_issuer"]) == sorted(
        [(str(boc), 500), (str(icbc), 500)]
    )
    assert [(x["key"], x["volume_minor"]) for x in r["by_day"]] == [("2026-11-18", 14_000)]
    topped = await world.client.post(f"{CAMPAIGNS}/{campaign_id}/top-ups",
                                     json={"amount": "5.00"}, headers=shop["headers"])  # fmt: skip
    assert topped.json()["budget"]["money_left"] == "95.00"
