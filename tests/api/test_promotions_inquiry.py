"""The discount inquiry over HTTP, on SQLite and PostgreSQL (issue 15, items 5 and 6): it says
per card why a campaign does not apply (card not of that bank, wrong scene, outside the time
window, budget spent, user cap reached) and what is left; a scanned code is quoted per card and
the quote is what taking the payment's choice then applies; a funder pushes coupons.

Uses are taken with ``promotions.take`` in the payment's way (the payment stage itself is being
wired separately): a ``PaymentContext`` keyed as ``flashpay.promotions_api`` keys the user."""

from __future__ import annotations

from typing import Any

import pytest
from test_promotions_api import CAMPAIGNS, act, create, definition
from world import code_of

from flashpay.institutions.service import get_institution
from flashpay.merchants.service import get_merchant
from flashpay.promotions import PaymentContext, UserKeys, quote, take
from flashpay.promotions.campaigns import CardKind, PaymentMode
from flashpay.promotions_api import card_key, draw_key
from flashpay.wallet.cards import list_wallet_cards

pytestmark = pytest.mark.anyio
STACKABLE = {"stacking": "stackable"}


def _id(world: Any, code: str) -> int:
    institution = get_institution(platform=world.platform, code=code)
    assert institution is not None
    return institution.id


async def running(world: Any, funder: str, body: dict[str, Any], key: str) -> int:
    created = await create(world, funder, body, key=key)
    assert created.status_code == 201, created.text
    campaign_id = int(created.json()["id"])
    activated = await act(world, funder, campaign_id, "activate")
    assert activated.status_code == 200, activated.text
    return campaign_id


def pay_context(
    world: Any, shop: dict[str, Any], *, phone: str, ref: str, amount: int = 6000, **card: Any
) -> PaymentContext:
    """A scan-to-pay at ``shop`` as the payment stage would describe it (BOC debit by default)."""
    merchant = get_merchant(platform=world.platform, merchant_id=shop["id"])
    assert merchant is not None
    return PaymentContext(
        payment_ref=ref, amount_minor=amount, merchant_id=merchant.id,
        scene=merchant.scene.value, mcc=merchant.mcc, city=merchant.city,
        acquirer_id=merchant.acquirer_id, issuer_id=card.get("issuer_id", _id(world, "BOC")),
        bin=card.get("bin", "621661"), card_kind=CardKind.DEBIT, mode=PaymentMode.SCAN,
        user=UserKeys(phone=phone, card_fingerprint=card.get("fingerprint")),
        at_ns=world.clock.now_ns(),
    )  # fmt: skip


def pay(world: Any, context: PaymentContext) -> int:
    """Choose and take as the payment does, in one transaction; the discount taken."""
    with world.platform.engine.begin() as connection:
        choice = quote(connection, context=context, draw_key=draw_key(world.platform))
        [taken] = take(connection, [choice])
    assert taken.taken, taken.refusal
    return taken.discount_minor


async def alice_with_two_cards(world: Any) -> tuple[Any, int, int]:
    alice, boc_card = await world.member_with_card("Alice", bank="BOC", prefix="621661")
    pan, _ = await world.issue(alice, bank="ICBC", prefix="622202")
    icbc_card = int((await world.bind(alice, pan))["id"])
    return alice, boc_card, icbc_card


async def test_the_inquiry_says_per_card_why_not_and_what_is_left(world):
    icbc = await running(world, "ICBC", definition(name="ICBC ¥10 off", **STACKABLE), "a")
    canteen_only = definition(name="BOC canteens", eligibility={"scenes": ["canteen"]})
    canteen = await running(world, "BOC", canteen_only, "b")
    lunch = definition(name="BOC at lunch", windows=[{"start": "11:00", "end": "13:30"}])
    at_lunch = await running(world, "BOC", {**lunch, **STACKABLE}, "c")  # now is 19:06 Beijing
    one_use = definition(name="Network: one use", budget={"uses": 1}, **STACKABLE)
    network = await running(world, "admin", one_use, "d")
    once_a_day = definition(name="BOC once a day", caps={"user_per_day": 1}, **STACKABLE)
    daily = await running(world, "BOC", once_a_day, "e")
    shop = await world.merchant("Wumart", scene="supermarket")
    alice, boc_card, icbc_card = await alice_with_two_cards(world)

    assert pay(world, pay_context(world, shop, phone="13900009999", ref="bob-1")) == 2000
    assert pay(world, pay_context(world, shop, phone=alice.phone, ref="alice-1")) == 1000

    url = f"/v1/promotions/discounts?merchant_id={shop['id']}&amount=60.00"
    offers = await world.client.get(url, headers=alice.headers)
    assert offers.status_code == 200, offers.text
    by_id = {o["campaign_id"]: o for o in offers.json()}
    assert canteen not in by_id  # the index leaves out what cannot apply at a supermarket
    assert (by_id[icbc]["why_not"], by_id[icbc]["card_ids"]) == (None, [icbc_card])
    assert by_id[icbc]["why_not_by_card"] == {str(boc_card): "promo_wrong_issuer"}
    assert by_id[icbc]["discount"] == "10.00"
    assert by_id[at_lunch]["why_not"] == "promo_outside_window"
    assert by_id[network]["why_not"] == "promo_budget_exhausted"
    assert (by_id[network]["uses_left"], by_id[network]["card_ids"]) == (0, [])
    assert by_id[daily]["why_not_by_card"] == {
        str(boc_card): "promo_user_daily_cap",
        str(icbc_card): "promo_wrong_issuer",
    }
    assert by_id[daily]["your_uses_left_today"] == 0
    assert by_id[daily]["money_left"] == "980.00"  # Bob's and Alice's ¥10 off ¥1,000

    asked = await world.client.get(
        f"/v1/promotions/discounts?merchant_id={shop['id']}&campaign_id={canteen}",
        headers=alice.headers,
    )
    assert [(o["campaign_id"], o["why_not"]) for o in asked.json()] == [
        (canteen, "promo_wrong_scene")
    ]
    assert (await act(world, "BOC", canteen, "pause")).status_code == 200
    paused = await world.client.get(
        f"/v1/promotions/discounts?campaign_id={canteen}&scene=canteen", headers=alice.headers
    )
    assert paused.json()[0]["why_not"] == "promo_not_active"
    too_many = "&".join(f"campaign_id={n}" for n in range(1, 52))
    refused = await world.client.get(f"/v1/promotions/discounts?{too_many}", headers=alice.headers)
    assert (refused.status_code, code_of(refused)) == (422, "validation_error")


async def test_a_scanned_code_is_quoted_per_card_as_the_payment_applies_it(world):
    draw = {"kind": "random_off", "low_minor": 100, "high_minor": 500}
    random_off = definition(name="BOC random ¥1–5", benefit=draw)
    boc = await running(world, "BOC", random_off, "r")
    three_off = {"kind": "amount_off", "off_minor": 300, "threshold_minor": 2000}
    await running(world, "ICBC", definition(name="ICBC ¥3 off ¥20", benefit=three_off), "i")
    shop = await world.merchant("Wumart", scene="supermarket")
    alice, boc_card, icbc_card = await alice_with_two_cards(world)
    static = await world.static_code(shop)

    params = {"payload": static, "amount": "60.00", "payment_ref": "pay-1"}
    quoted = await world.client.get("/v1/promotions/scan-quote", params=params,
                                    headers=alice.headers)  # fmt: skip
    assert quoted.status_code == 200, quoted.text
    body = quoted.json()
    assert (body["merchant_id"], body["dynamic"], body["amount"]) == (shop["id"], False, "60.00")
    cards = {c["card_id"]: c for c in body["cards"]}
    assert set(cards) == {boc_card, icbc_card}
    drawn = cards[boc_card]["discount_minor"]
    assert 100 <= drawn <= 500
    assert [a["campaign_id"] for a in cards[boc_card]["applied"]] == [boc]
    assert cards[boc_card]["left"][0]["money_left_minor"] == 100_000
    assert (cards[icbc_card]["discount"], cards[icbc_card]["pay"]) == ("3.00", "57.00")
    assert cards[icbc_card]["skipped"][str(boc)] == "promo_wrong_issuer"
    for card_id, card in cards.items():  # the same as the quote by merchant id
        by_merchant = await world.client.get(
            f"/v1/promotions/quote?merchant_id={shop['id']}&amount=60.00&payment_ref=pay-1"
            f"&card_id={card_id}", headers=alice.headers,
        )  # fmt: skip
        assert by_merchant.json()["discount_minor"] == card["discount_minor"]

    registry = {c.id: c for c in list_wallet_cards(platform=world.platform, user_id=alice.user_id)}
    boc_registry = registry[boc_card]
    fingerprint, first6 = card_key(boc_registry), boc_registry.card.first6
    context = pay_context(
        world, shop, phone=alice.phone, ref="pay-1", fingerprint=fingerprint, bin=first6
    )
    assert pay(world, context) == drawn  # the payment takes exactly the quoted random draw
    after = await world.client.get("/v1/promotions/scan-quote", params=params,
                                   headers=alice.headers)  # fmt: skip
    left = {c["card_id"]: c for c in after.json()["cards"]}[boc_card]["left"][0]
    assert left["money_left_minor"] == 100_000 - drawn

    order = await world.order(shop, "80.00", "B-1")
    dynamic = await world.client.get(
        "/v1/promotions/scan-quote", params={"payload": order["payload"]}, headers=alice.headers
    )
    assert dynamic.status_code == 200, dynamic.text
    assert (dynamic.json()["amount"], dynamic.json()["bill_number"]) == ("80.00", "B-1")
    assert {c["card_id"]: c["pay"] for c in dynamic.json()["cards"]}[icbc_card] == "77.00"
    for query, status, code in (
        ({"payload": order["payload"], "amount": "10.00"}, 422, "promo_amount_mismatch"),
        ({"payload": static}, 422, "promo_amount_required"),
        ({"payload": "not a code", "amount": "1.00"}, 422, "promo_invalid_code"),
    ):
        refused = await world.client.get("/v1/promotions/scan-quote", params=query,
                                         headers=alice.headers)  # fmt: skip
        assert (refused.status_code, code_of(refused)) == (status, code), query


async def test_a_funder_pushes_coupons_to_users_by_phone_and_id(world):
    coupons = definition(coupon={"valid_seconds": 86_400, "claimable": False, "coupons_max": 3})
    campaign_id = await running(world, "BOC", coupons, "coupons")
    alice, _ = await world.member_with_card("Alice")
    bob, _ = await world.member_with_card("Bob")
    carol, _ = await world.member_with_card("Carol")
    dave, _ = await world.member_with_card("Dave")
    url = f"{CAMPAIGNS}/{campaign_id}/coupon-pushes"
    body = {"phones": [alice.phone, "13999999999", alice.phone], "user_ids": [bob.user_id, 999_999]}
    headers = {**world.keys["BOC"], "Idempotency-Key": "push-1"}
    pushed = await world.client.post(url, json=body, headers=headers)
    assert pushed.status_code == 200, pushed.text
    outcomes = {u["user"]: u["outcome"] for u in pushed.json()["users"]}
    assert outcomes == {
        f"phone:{alice.phone}": "issued",
        "phone:13999999999": "promo_unknown_user",
        f"user:{bob.user_id}": "issued",
        "user:999999": "promo_unknown_user",
    }
    assert pushed.json()["issued"] == 2
    replay = await world.client.post(url, json=body, headers=headers)
    assert replay.json() == pushed.json()  # the stored answer; nothing pushed twice
    held = await world.client.get("/v1/promotions/coupons", headers=alice.headers)
    assert [c["campaign_id"] for c in held.json()] == [campaign_id]

    again = await world.client.post(
        url, json={"phones": [alice.phone, carol.phone, dave.phone]},
        headers={**world.keys["BOC"], "Idempotency-Key": "push-2"},
    )  # fmt: skip
    assert [u["outcome"] for u in again.json()["users"]] == [
        "promo_coupon_already_held", "issued", "promo_coupons_all_issued",
    ]  # fmt: skip

    other = await world.client.post(url, json=body, headers=world.keys["ICBC"])
    assert (other.status_code, code_of(other)) == (404, "promo_campaign_not_found")
    plain = await running(world, "ICBC", definition(name="no coupons"), "plain")
    refused = await world.client.post(
        f"{CAMPAIGNS}/{plain}/coupon-pushes", json=body, headers=world.keys["ICBC"]
    )
    assert (refused.status_code, code_of(refused)) == (409, "promo_coupons_not_offered")
    too_many = {"phones": [f"139{n:08d}" for n in range(1_001)]}
    refused = await world.client.post(url, json=too_many, headers=world.keys["BOC"])
    assert (refused.status_code, code_of(refused)) == (422, "validation_error")
    split = {"phones": [f"139{n:08d}" for n in range(600)], "user_ids": list(range(1, 600))}
    refused = await world.client.post(url, json=split, headers=world.keys["BOC"])
    assert (refused.status_code, code_of(refused)) == (422, "validation_error")


async def test_a_spent_campaign_pushes_no_coupons(world):
    one = definition(budget={"uses": 1}, coupon={"valid_seconds": 86_400, "claimable": False})
    campaign_id = await running(world, "BOC", one, "one")
    alice, _ = await world.member_with_card("Alice")
    url = f"{CAMPAIGNS}/{campaign_id}/coupon-pushes"
    first = await world.client.post(url, json={"phones": [alice.phone]}, headers=world.keys["BOC"])
    assert first.json()["issued"] == 1
    shop = await world.merchant("Wumart", scene="supermarket")
    assert pay(world, pay_context(world, shop, phone=alice.phone, ref="p")) == 1000
    spent = await world.client.post(url, json={"phones": ["13800000099"]},
                                    headers=world.keys["BOC"])  # fmt: skip
    assert (spent.status_code, code_of(spent)) == (409, "promo_budget_exhausted")
