"""Promotions over HTTP, on SQLite and PostgreSQL: a funder manages its own campaigns (and sees
no other funder's), definitions are refused by name, a retried create creates once, the user's
inquiry and quote agree, and a coupon is claimed once."""

from __future__ import annotations

from typing import Any

import pytest
from world import code_of

from flashpay.institutions.service import get_institution

pytestmark = pytest.mark.anyio
CAMPAIGNS = "/v1/promotions/campaigns"


def _id(world: Any, code: str) -> int:
    institution = get_institution(platform=world.platform, code=code)
    assert institution is not None
    return institution.id


def definition(**fields: Any) -> dict[str, Any]:
    """¥10 off ¥50 at supermarkets for November and December 2026 (the test clock's now)."""
    return {
        "name": "Bank of China: ¥10 off ¥50",
        "starts_at": "2026-11-01T00:00:00+08:00",
        "ends_at": "2027-01-01T00:00:00+08:00",
        "eligibility": {"scenes": ["supermarket"]},
        "benefit": {"kind": "amount_off", "off_minor": 1000, "threshold_minor": 5000},
        "budget": {"money_minor": 100_000, "uses": 100},
        **fields,
    }


async def create(world: Any, bank: str, body: dict[str, Any], key: str = "c1") -> Any:
    headers = {**world.keys[bank], "Idempotency-Key": key}
    return await world.client.post(CAMPAIGNS, json=body, headers=headers)


async def act(world: Any, bank: str, campaign_id: int, action: str) -> Any:
    return await world.client.post(f"{CAMPAIGNS}/{campaign_id}/{action}", headers=world.keys[bank])


async def test_a_funder_runs_its_campaign_and_another_funder_sees_none_of_it(world):
    created = await create(world, "BOC", definition())
    assert created.status_code == 201, created.text
    body = created.json()
    campaign_id = body["id"]
    assert (body["state"], body["funder"]) == ("draft", {"kind": "issuer", "id": _id(world, "BOC")})
    assert body["budget"]["money_left"] == "1000.00"
    for action, state in (("activate", "active"), ("pause", "paused"), ("activate", "active")):
        moved = await act(world, "BOC", campaign_id, action)
        assert (moved.status_code, moved.json()["state"]) == (200, state), moved.text
    topped = await world.client.post(
        f"{CAMPAIGNS}/{campaign_id}/top-ups", json={"amount": "50.00", "uses": 5},
        headers=world.keys["BOC"],
    )  # fmt: skip
    assert topped.status_code == 200, topped.text
    assert (topped.json()["budget"]["money"], topped.json()["budget"]["uses_max"]) == (
        "1050.00",
        105,
    )
    report = await world.client.get(f"{CAMPAIGNS}/{campaign_id}/report", headers=world.keys["BOC"])
    assert report.status_code == 200, report.text
    assert (report.json()["uses"], report.json()["money_left"]) == (0, "1050.00")
    listed = await world.client.get(f"{CAMPAIGNS}?limit=1", headers=world.keys["BOC"])
    assert [c["id"] for c in listed.json()["items"]] == [campaign_id]
    assert listed.json()["next_cursor"] is None

    for response in (
        await world.client.get(f"{CAMPAIGNS}/{campaign_id}", headers=world.keys["ICBC"]),
        await world.client.get(f"{CAMPAIGNS}/{campaign_id}/report", headers=world.keys["ICBC"]),
        await act(world, "ICBC", campaign_id, "end"),
        await act(world, "UMS", campaign_id, "pause"),
    ):
        assert (response.status_code, code_of(response)) == (404, "promo_campaign_not_found")
    others = await world.client.get(CAMPAIGNS, headers=world.keys["ICBC"])
    assert others.json()["items"] == []

    ended = await act(world, "BOC", campaign_id, "end")
    assert ended.json()["state"] == "ended"
    again = await act(world, "BOC", campaign_id, "activate")
    assert (again.status_code, code_of(again)) == (409, "promo_invalid_transition")


async def test_bad_definitions_are_refused_by_name(world):
    too_much = definition(benefit={"kind": "percent_off", "rate_bps": 10_001})
    refused = await create(world, "BOC", too_much, key="bad-1")
    assert (refused.status_code, code_of(refused)) == (422, "promo_invalid_benefit")
    backwards = definition(windows=[{"start": "13:30", "end": "11:00"}])
    refused = await create(world, "BOC", backwards, key="bad-2")
    assert (refused.status_code, code_of(refused)) == (422, "promo_invalid_window")
    someone_elses = definition(funder={"kind": "issuer", "id": _id(world, "ICBC")})
    refused = await create(world, "BOC", someone_elses, key="bad-3")
    assert (refused.status_code, code_of(refused)) == (403, "promo_not_funder")
    listed = await world.client.get(CAMPAIGNS, headers=world.keys["BOC"])
    assert listed.json()["items"] == []


async def test_a_retried_create_creates_once(world):
    first = await create(world, "BOC", definition(), key="same")
    retry = await create(world, "BOC", definition(), key="same")
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json()["id"] == first.json()["id"]
    listed = await world.client.get(CAMPAIGNS, headers=world.keys["BOC"])
    assert [c["id"] for c in listed.json()["items"]] == [first.json()["id"]]


async def test_the_inquiry_and_the_quote_agree_and_say_why_not(world):
    boc = (await create(world, "BOC", definition(), key="boc")).json()["id"]
    icbc_only = definition(name="ICBC cards only", eligibility={"issuer_ids": [_id(world, "ICBC")]})
    icbc = (await create(world, "ICBC", icbc_only, key="icbc")).json()["id"]
    for bank, campaign_id in (("BOC", boc), ("ICBC", icbc)):
        assert (await act(world, bank, campaign_id, "activate")).status_code == 200
    shop = await world.merchant("Wumart", scene="supermarket")
    alice, card = await world.member_with_card("Alice", bank="BOC", prefix="621661")

    offers = await world.client.get(
        f"/v1/promotions/discounts?merchant_id={shop['id']}&amount=60.00", headers=alice.headers
    )
    assert offers.status_code == 200, offers.text
    by_id = {o["campaign_id"]: o for o in offers.json()}
    assert (by_id[boc]["why_not"], by_id[boc]["card_ids"], by_id[boc]["discount"]) == (
        None,
        [card],
        "10.00",
    )
    assert (by_id[icbc]["why_not"], by_id[icbc]["card_ids"]) == ("promo_wrong_issuer", [])

    quoted = await world.client.get(
        f"/v1/promotions/quote?merchant_id={shop['id']}&amount=60.00&payment_ref=p1",
        headers=alice.headers,
    )
    assert quoted.status_code == 200, quoted.text
    body = quoted.json()
    assert (body["discount"], body["pay"], body["card_id"]) == ("10.00", "50.00", card)
    assert [a["campaign_id"] for a in body["applied"]] == [boc]
    assert body["skipped"][str(icbc)] == "promo_wrong_issuer"

    elsewhere = await world.client.get("/v1/promotions/discounts?scene=bus", headers=alice.headers)
    assert [o["campaign_id"] for o in elsewhere.json()] == [icbc]  # BOC's is for supermarkets


async def test_a_coupon_is_claimed_once(world):
    coupons = definition(coupon={"valid_seconds": 86_400, "coupons_max": 10})
    campaign_id = (await create(world, "BOC", coupons, key="coupons")).json()["id"]
    alice, _ = await world.member_with_card("Alice")
    url = f"{CAMPAIGNS}/{campaign_id}/coupons"
    early = await world.client.post(url, headers=alice.headers)
    assert (early.status_code, code_of(early)) == (409, "promo_not_active")
    assert (await act(world, "BOC", campaign_id, "activate")).status_code == 200

    claimed = await world.client.post(url, headers={**alice.headers, "Idempotency-Key": "k1"})
    assert claimed.status_code == 201, claimed.text
    replayed = await world.client.post(url, headers={**alice.headers, "Idempotency-Key": "k1"})
    assert replayed.json()["id"] == claimed.json()["id"]
    twice = await world.client.post(url, headers={**alice.headers, "Idempotency-Key": "k2"})
    assert (twice.status_code, code_of(twice)) == (409, "promo_coupon_already_held")
    held = await world.client.get("/v1/promotions/coupons", headers=alice.headers)
    assert [c["id"] for c in held.json()] == [claimed.json()["id"]]

    not_theirs = await world.client.post(url, headers=world.keys["BOC"])
    assert (not_theirs.status_code, code_of(not_theirs)) == (403, "forbidden")
