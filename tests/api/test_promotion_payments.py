"""Promotions applied by real payments over HTTP, on SQLite and PostgreSQL (decision 0019).

Each benefit kind through a real payment kind — ¥10 off ¥50 by the issuer on a static code,
a percentage by the network on a dynamic order, a random instant discount by the acquirer on a
payment code, a ¥1 ride by the merchant for new users, a merchant's coupon — with who paid what
read from the ledger: the cardholder paid the amount less the discount, the merchant got the
full amount less MDR, the funder's ``promotion_expense`` paid the discount. The world proves
after every test that every institution's books balance, the mirrors agree and the ledger's
invariants hold (``checked_world``). Then refunds, declines and the audit-log leaf.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from promo_kit import (
    available,
    campaign,
    expense,
    fen,
    institution_id,
    merchant_balance,
    report,
    state,
)

from flashpay.chain import leaf
from flashpay.institutions.chart import TransferCode
from flashpay.merchants.records import SCENE_FEES, Scene
from flashpay.payments.legs import ledger_ids

pytestmark = pytest.mark.anyio


def _net(scene: str, amount: int) -> int:
    """What the merchant is owed for ``amount`` (the full amount less MDR)."""
    return SCENE_FEES[Scene(scene)].split(amount)[3]


async def test_amount_off_funded_by_the_issuer_on_a_static_code(world):
    boc = await campaign(world, world.keys["BOC"], "boc",
                         eligibility={"scenes": ["supermarket"],
                                      "issuer_ids": [institution_id(world, "BOC")]})  # fmt: skip
    shop = await world.merchant("Wumart", scene="supermarket")
    alice, card = await world.member_with_card("Alice", balance="100.00")
    code = await world.static_code(shop)
    paid = await world.pay(alice, code, card, amount="60.00")
    assert paid.status_code == 201, paid.text
    body = paid.json()
    assert (body["status"], body["amount"], body["discount"], body["paid"]) == (
        "completed", "60.00", "10.00", "50.00")  # fmt: skip
    assert [(p["campaign_id"], p["funder_kind"], p["discount"]) for p in body["promotions"]] == [
        (boc, "issuer", "10.00")
    ]
    assert await available(world, alice, card) == 100_00 - 50_00
    assert merchant_balance(world, shop["id"]) == _net("supermarket", 60_00)
    assert expense(world, "BOC") == 10_00
    again = await world.client.get(f"/v1/payments/{body['id']}", headers=alice.headers)
    assert (again.json()["discount"], again.json()["promotions"][0]["name"]) == (
        "10.00", "test campaign")  # fmt: skip
    receipt = await world.client.get(f"/v1/payments/{body['id']}/receipt", headers=alice.headers)
    assert receipt.status_code == 200, receipt.text
    r = receipt.json()
    assert (r["original_amount"], r["discount"], r["paid"]) == ("60.00", "10.00", "50.00")
    assert r["promotions"][0]["funder_id"] == institution_id(world, "BOC")
    below = await world.pay(alice, code, card, amount="40.00")  # under the ¥50 threshold
    assert (below.json()["discount"], below.json()["promotions"]) == ("0.00", [])
    counted = await report(world, world.keys["BOC"], boc)
    assert (counted["uses"], counted["discount"]) == (1, "10.00")


async def test_percent_off_funded_by_the_network_on_a_dynamic_order(world):
    await campaign(world, world.keys["admin"], "cup",
                   benefit={"kind": "percent_off", "rate_bps": 1500, "cap_minor": 500})  # fmt: skip
    canteen = await world.merchant("Canteen", scene="canteen", mcc="5812")
    bob, card = await world.member_with_card("Bob", bank="ICBC", prefix="622202")
    order = await world.order(canteen, "18.50", "LUNCH-1")
    paid = await world.pay(bob, order["payload"], card)
    body = paid.json()
    # 15 % of 18.50 = 2.775: exactly one half rounds down, to 2.77 (under the ¥5 cap)
    assert (body["kind"], body["discount"], body["paid"]) == ("mpm_dynamic", "2.77", "15.73")
    assert await available(world, bob, card) == 1000_00 - 15_73
    assert merchant_balance(world, canteen["id"]) == _net("canteen", 18_50)
    assert expense(world, "CUP") == 2_77


async def test_random_off_funded_by_the_acquirer_on_a_payment_code(world):
    ums = await campaign(world, world.keys["UMS"], "ums",
                         benefit={"kind": "random_off", "low_minor": 100, "high_minor": 500},
                         eligibility={"modes": ["code"]})  # fmt: skip
    bus = await world.merchant("Bus 1", scene="bus", mcc="4111")
    carol, card = await world.member_with_card("Carol")
    code = await world.payment_code(carol, card)
    paid = await world.collect(bus, code["qr_payload"], "20.00")
    body = paid.json()
    discount = fen(body["discount"])
    assert 100 <= discount <= 500, body
    assert body["promotions"][0]["funder_kind"] == "acquirer"
    assert await available(world, carol, card) == 1000_00 - 20_00 + discount
    assert merchant_balance(world, bus["id"]) == _net("bus", 20_00)
    assert expense(world, "UMS") == discount
    assert (await report(world, world.keys["UMS"], ums))["uses"] == 1


async def test_a_quote_equals_what_the_payment_applies_for_a_random_discount(world):
    await campaign(world, world.keys["BOC"], "rnd",
                   benefit={"kind": "random_off", "low_minor": 1, "high_minor": 999})  # fmt: skip
    shop = await world.merchant("Wumart")
    alice, card = await world.member_with_card("Alice")
    code = await world.static_code(shop)
    for n in range(5):
        ref = f"pay-{n}"
        quoted = await world.client.get(
            f"/v1/promotions/quote?merchant_id={shop['id']}&amount=33.33&payment_ref={ref}",
            headers=alice.headers,
        )
        assert quoted.status_code == 200, quoted.text
        paid = await world.client.post(
            "/v1/payments/qr",
            json={"payload": code, "card_id": card, "amount": "33.33", "pin": "135790"},
            headers={**alice.headers, "Idempotency-Key": ref},
        )
        assert (paid.json()["discount"], paid.json()["paid"]) == (
            quoted.json()["discount"], quoted.json()["pay"])  # fmt: skip


async def test_a_one_yuan_ride_funded_by_the_merchant_for_new_users_only(world):
    subway = await world.merchant("Line 4", scene="subway", mcc="4111")
    await campaign(world, subway["headers"], "ride",
                   funder={"kind": "merchant", "id": subway["id"]},
                   eligibility={"new_user": "first_ever", "merchant_ids": [subway["id"]]},
                   benefit={"kind": "fixed_price", "price_minor": 100})  # fmt: skip
    dave, card = await world.member_with_card("Dave")
    code = await world.static_code(subway)
    first = (await world.pay(dave, code, card, amount="4.00")).json()
    second = (await world.pay(dave, code, card, amount="4.00")).json()
    assert (first["discount"], first["paid"], first["promotions"][0]["funder_kind"]) == (
        "3.00", "1.00", "merchant")  # fmt: skip
    assert (second["discount"], second["paid"]) == ("0.00", "4.00")
    assert await available(world, dave, card) == 1000_00 - 5_00
    # The merchant is credited as for two ¥4 rides less MDR and pays the first one's ¥3.
    assert merchant_balance(world, subway["id"]) == 2 * _net("subway", 4_00) - 3_00


async def test_a_coupon_is_redeemed_by_one_payment_only(world):
    shop = await world.merchant("Bakery", scene="supermarket")
    coupon_campaign = await campaign(
        world, world.keys["BOC"], "cpn", benefit={"kind": "amount_off", "off_minor": 500},
        coupon={"valid_seconds": 86_400, "claimable": True, "coupons_max": 10},
    )  # fmt: skip
    erin, card = await world.member_with_card("Erin")
    code = await world.static_code(shop)
    none_yet = (await world.pay(erin, code, card, amount="12.00")).json()
    assert none_yet["discount"] == "0.00"  # no coupon held
    claimed = await world.client.post(
        f"/v1/promotions/campaigns/{coupon_campaign}/coupons",
        headers={**erin.headers, "Idempotency-Key": "claim-1"},
    )
    assert claimed.status_code == 201, claimed.text
    used = (await world.pay(erin, code, card, amount="12.00")).json()
    after = (await world.pay(erin, code, card, amount="12.00")).json()
    assert (used["discount"], after["discount"]) == ("5.00", "0.00")
    wallet = await world.client.get("/v1/promotions/coupons", headers=erin.headers)
    assert wallet.json() == []


async def test_refunds_take_the_discount_back_pro_rata_and_exactly(world):
    boc = await campaign(world, world.keys["BOC"], "pct",
                         benefit={"kind": "percent_off", "rate_bps": 3333},
                         caps={"user_per_day": 1})  # fmt: skip
    shop = await world.merchant("Wumart")
    alice, card = await world.member_with_card("Alice", balance="100.00")
    paid = (await world.pay(alice, await world.static_code(shop), card, amount="10.01")).json()
    discount = fen(paid["discount"])  # 33.33 % of 10.01 = 3.3363… → 3.34
    assert discount == 3_34
    pid, headers = paid["id"], shop["headers"]
    back = []
    for n, amount in enumerate(("3.00", "0.01", "3.33", "3.67")):
        before = await available(world, alice, card)
        refunded = await world.client.post(
            f"/v1/merchant/payments/{pid}/refunds", json={"amount": amount},
            headers={**headers, "Idempotency-Key": f"r{n}"},
        )  # fmt: skip
        assert refunded.status_code == 201, refunded.text
        back.append(await available(world, alice, card) - before)
        if n < 3:  # a partial refund leaves the campaign's use counted
            assert (await report(world, world.keys["BOC"], boc))["uses"] == 1
    # floor(334·300/1001)=100 → 300−100; floor(334·301/1001)=100 → 1−0; …: the shares telescope
    assert back == [200, 1, 3_33 - 1_11, 3_67 - 1_23]
    assert sum(back) == 10_01 - discount  # the card got back exactly what it paid
    assert await available(world, alice, card) == 100_00
    assert expense(world, "BOC") == 0  # the funder got its discount back, to the fen
    assert merchant_balance(world, shop["id"]) == 0
    counted = await report(world, world.keys["BOC"], boc)
    assert (counted["uses"], counted["money_left"]) == (0, "1000.00")  # given back in full
    again = (await world.pay(alice, await world.static_code(shop), card, amount="10.01")).json()
    assert again["discount"] == "3.34"  # the daily cap's use came back too


async def test_a_payment_declined_after_the_stage_leaves_budget_caps_and_coupon_untouched(world):
    shop = await world.merchant("Wumart")
    capped = await campaign(
        world, world.keys["BOC"], "c", benefit={"kind": "amount_off", "off_minor": 1000},
        budget={"money_minor": 1000, "uses": 1}, caps={"user_per_day": 1},
        coupon={"valid_seconds": 86_400, "claimable": True},
    )  # fmt: skip
    frank, card = await world.member_with_card("Frank", balance="39.99")
    claimed = await world.client.post(
        f"/v1/promotions/campaigns/{capped}/coupons",
        headers={**frank.headers, "Idempotency-Key": "claim"},
    )
    assert claimed.status_code == 201, claimed.text
    code = await world.static_code(shop)
    poor = (await world.pay(frank, code, card, amount="50.00")).json()  # needs 40.00
    assert (poor["status"], poor["decline_reason"], poor["discount"]) == (
        "declined", "insufficient_funds", "0.00")  # fmt: skip
    counted = await state(world, world.keys["BOC"], capped)
    assert (counted["state"], counted["budget"]["uses"]) == ("active", 0)
    assert len((await world.client.get("/v1/promotions/coupons", headers=frank.headers)).json())
    assert expense(world, "BOC") == 0
    ok = (await world.pay(frank, code, card, amount="49.99")).json()  # 39.99 after the coupon
    assert (ok["status"], ok["discount"]) == ("completed", "10.00")
    assert await available(world, frank, card) == 0
    assert (await state(world, world.keys["BOC"], capped))["state"] == "exhausted"


async def test_the_audit_leaf_of_a_discounted_payment_carries_the_discount(world):
    await campaign(world, world.keys["admin"], "leaf")
    shop = await world.merchant("Wumart")
    alice, card = await world.member_with_card("Alice")
    code = await world.static_code(shop)
    paid = (await world.pay(alice, code, card, amount="80.00")).json()
    plain = (await world.pay(alice, code, card, amount="20.00")).json()  # below the threshold
    world.chain_log.sync_from_ledger(world.platform.ledger)
    leaves = {}
    for _, _, data in world.chain_log.leaves(0, 1000):
        decoded = leaf.decode(data)
        ids = {t.id for t in decoded.transfers}
        for payment in (paid, plain):
            if ledger_ids(int(payment["id"]), "purchase")[1] in ids:
                leaves[payment["id"]] = decoded
    discounted, full = leaves[paid["id"]], leaves[plain["id"]]
    assert (discounted.version, discounted.discount_minor) == (2, 10_00)
    assert [t.amount for t in discounted.transfers if t.code == TransferCode.PROMOTION] == [10_00]
    assert (full.version, full.discount_minor) == (1, None)  # a leaf as before promotions


def _cases() -> list[tuple[dict[str, Any], int, str]]:
    """Hypothesis-drawn (benefit, amount, payment ref) cases, drawn up front (the HTTP world is
    async and expensive: one world runs them all, each with its own campaign)."""
    benefits = st.one_of(
        st.builds(lambda off, th: {"kind": "amount_off", "off_minor": off, "threshold_minor": th},
                  st.integers(1, 3_000), st.integers(0, 5_000)),
        st.builds(lambda bps, cap: {"kind": "percent_off", "rate_bps": bps, "cap_minor": cap},
                  st.integers(1, 10_000), st.integers(1, 5_000)),
        st.builds(lambda low, span: {"kind": "random_off", "low_minor": low,
                                     "high_minor": low + span},
                  st.integers(1, 500), st.integers(0, 2_000)),
        st.builds(lambda price: {"kind": "fixed_price", "price_minor": price},
                  st.integers(0, 3_000)),
    )  # fmt: skip
    found: list[tuple[dict[str, Any], int, str]] = []

    @settings(max_examples=12, database=None, derandomize=True, deadline=None)
    @given(benefits, st.integers(1, 4_000), st.text("abcdef0123456789-", min_size=1, max_size=40))
    def draw(benefit: dict[str, Any], amount: int, ref: str) -> None:
        found.append((benefit, amount, ref))

    draw()
    return found


async def test_the_quote_equals_the_applied_discount_over_drawn_campaigns_and_payments(world):
    shop = await world.merchant("Wumart")
    alice, card = await world.member_with_card("Alice", balance="5000.00")
    code = await world.static_code(shop)
    for n, (benefit, amount, ref) in enumerate(_cases()):
        campaign_id = await campaign(world, world.keys["BOC"], f"h{n}", benefit=benefit)
        text = f"{amount // 100}.{amount % 100:02d}"
        quoted = await world.client.get(
            f"/v1/promotions/quote?merchant_id={shop['id']}&amount={text}&payment_ref={ref}-{n}",
            headers=alice.headers,
        )
        assert quoted.status_code == 200, quoted.text
        paid = await world.client.post(
            "/v1/payments/qr",
            json={"payload": code, "card_id": card, "amount": text, "pin": "135790"},
            headers={**alice.headers, "Idempotency-Key": f"{ref}-{n}"},
        )
        body = paid.json()
        assert body["status"] == "completed", body
        quote = quoted.json()
        assert (body["discount"], body["paid"]) == (quote["discount"], quote["pay"]), benefit
        ended = await world.client.post(
            f"/v1/promotions/campaigns/{campaign_id}/end", headers=world.keys["BOC"]
        )
        assert ended.status_code == 200, ended.text
