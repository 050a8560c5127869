"""QR payments end to end over HTTP, on SQLite and PostgreSQL: scan-to-pay (static and dynamic
codes), show-to-pay (payment codes in both forms), two-phase holds, refunds, the PBOC limits,
every decline reason, one merchant in every scene — and the books after every flow."""

from __future__ import annotations

import pytest
from world import PIN, code_of

from flashpay.chain.receipt import verify_receipt
from flashpay.institutions.chart import AccountCode, institution_account_id
from flashpay.payments.legs import ledger_ids

# Other networks' public payloads (verified in tests/qr): Brazil's PIX, Thailand's PromptPay, a
# UnionPay payment code.
PIX = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR"
    "5913Fulano de Tal6008BRASILIA62070503***63041D3D"
)
PROMPTPAY = "00020101021129370016A000000677010111011300668999999995802TH53037646304FE29"
UNIONPAY_CPM = (
    "hQVDUFYwMWFWTwigAAADMwEBAlcRYmNgAQBxNnLSMSIBAAABiAFfNAEAYzOfJghWite85mtxi58nAYCfEBEHAAEDoAAAAQ"
    "gwMDAwMDAwMZ82AhEiggIAAJ83BCJgSI4="
)

pytestmark = pytest.mark.anyio
SCENES = {
    "supermarket": "5411", "convenience_store": "5499", "campus": "8220", "canteen": "5814",
    "bus": "4131", "subway": "4111", "food_market": "5422", "parking": "7523",
    "hospital": "8062", "vending": "5814",
}  # fmt: skip


async def test_static_code_purchase_posts_section_4_to_the_fen(world):
    shop = await world.merchant("Wumart", scene="supermarket")
    alice, card = await world.member_with_card("Alice", bank="BOC", prefix="621661")
    payload = await world.static_code(shop)
    paid = await world.pay(alice, payload, card, amount="100.00")
    assert paid.status_code == 201, paid.text
    body = paid.json()
    assert (body["status"], body["kind"], body["merchant"]) == ("completed", "mpm_static", "Wumart")
    legs = world.platform.ledger.lookup_transfers(
        ledger_ids(int(body["id"]), "purchase")  # the six §4 legs, ids derived from the payment
    )
    a = AccountCode
    assert [(t.debit_account_id, t.credit_account_id, t.amount) for t in legs][2:4] == [
        (
            institution_account_id("CUP", a.ISSUER_RECEIVABLE, "BOC"),
            institution_account_id("CUP", a.ACQUIRER_PAYABLE, "UMS"),
            9948,
        ),
        (
            institution_account_id("CUP", a.ISSUER_RECEIVABLE, "BOC"),
            institution_account_id("CUP", a.FEE_INCOME),
            7,
        ),
    ]
    assert [t.amount for t in legs] == [45, 9955, 9948, 7, 9940, 8]
    assert (await world.balance(alice, card))["available"] == "900.00"
    receipt_user = await world.client.get(
        f"/v1/payments/{body['id']}/receipt", headers=alice.headers
    )
    receipt_shop = await world.client.get(
        f"/v1/merchant/payments/{body['id']}/receipt", headers=shop["headers"]
    )
    assert receipt_user.json()["voucher"] == receipt_shop.json()["voucher"] == body["voucher"]
    detail = await world.client.get(f"/v1/payments/{body['id']}", headers=alice.headers)
    assert [e["status"] for e in detail.json()["history"]] == ["created", "completed"]


async def test_dynamic_order_is_paid_once(world):
    canteen = await world.merchant("Campus Canteen No.1", scene="canteen", mcc="5814")
    alice, card = await world.member_with_card("Alice")
    bob, bob_card = await world.member_with_card("Bob", bank="ICBC", prefix="622202")
    order = await world.order(canteen, "18.50", "LUNCH-001")
    first = await world.pay(alice, order["payload"], card, pin=None)  # password-free, small
    assert first.json()["status"] == "completed"
    assert first.json()["pin_verified"] is False
    again = await world.pay(bob, order["payload"], bob_card)
    assert again.json()["decline_reason"] == "order_already_paid"
    seen = await world.client.get(f"/v1/merchant/orders/{order['id']}", headers=canteen["headers"])
    assert seen.json()["status"] == "paid"
    mismatch = await world.pay(bob, (await world.order(canteen, "5.00", "L2"))["payload"],
                               bob_card, amount="1.00")  # fmt: skip
    assert (mismatch.status_code, code_of(mismatch)) == (422, "amount_mismatch")
    late = await world.order(canteen, "9.00", "L3", expires_in_seconds=60)
    world.clock.advance(61)
    expired = await world.pay(bob, late["payload"], bob_card)
    assert expired.json()["decline_reason"] == "order_expired"


async def test_payment_codes_both_forms_once_each_within_60_seconds(world):
    bus = await world.merchant("Beijing Bus Line 1", scene="bus", mcc="4131")
    alice, card = await world.member_with_card("Alice")
    code = await world.payment_code(alice, card)
    assert len(code["numeric"]) == 19
    assert code["numeric"].startswith("62")
    paid = await world.collect(bus, code["qr_payload"], "2.00")
    assert paid.json()["status"] == "completed"
    assert paid.json()["kind"] == "cpm"
    replay = await world.collect(bus, code["qr_payload"], "2.00")
    assert replay.json()["decline_reason"] == "code_already_used"
    same_counter = await world.collect(bus, code["numeric"], "2.00")  # same token and counter
    assert same_counter.json()["decline_reason"] == "code_already_used"
    fresh = await world.payment_code(alice, card)
    by_digits = await world.collect(bus, fresh["numeric"], "3.00")
    assert by_digits.json()["status"] == "completed"
    stale = await world.payment_code(alice, card)
    world.clock.advance(61)
    late = await world.collect(bus, stale["qr_payload"], "2.00")
    assert late.json()["decline_reason"] == "code_expired"
    foreign = await world.collect(bus, UNIONPAY_CPM, "2.00")
    assert foreign.json()["decline_reason"] == "foreign_code"
    unknown_digits = await world.collect(bus, "6200000000000000003", "2.00")
    assert unknown_digits.json()["decline_reason"] in ("code_invalid", "invalid_code")


async def test_foreign_and_broken_codes_are_declined_not_errors(world):
    alice, card = await world.member_with_card("Alice")
    for payload, reason in [
        (PIX, "foreign_code"),
        (PROMPTPAY, "foreign_code"),
        (PIX[:-1] + "0", "invalid_code"),
        ("not a qr payload", "invalid_code"),
    ]:
        response = await world.pay(alice, payload, card, amount="1.00")
        assert response.status_code == 201
        assert response.json()["decline_reason"] == reason


async def test_pboc_limits(world):
    shop = await world.merchant("FamilyMart", scene="convenience_store", mcc="5499")
    alice, card = await world.member_with_card("Alice", balance="20000.00")
    static = await world.static_code(shop)
    assert (await world.pay(alice, static, card, amount="300.00")).json()["status"] == "completed"
    over_static = await world.pay(alice, static, card, amount="300.00")
    assert over_static.json()["decline_reason"] == "limit_exceeded"  # ¥500 a day on static codes
    big = await world.order(shop, "1000.01", "B1")
    assert (await world.pay(alice, big["payload"], card, pin=None)).json()["decline_reason"] == (
        "pin_required"
    )
    small = [await world.order(shop, "400.00", f"S{n}") for n in range(3)]
    outcomes = [(await world.pay(alice, o["payload"], card, pin=None)).json() for o in small]
    # Password-free ≤ ¥1,000 a day: the third ¥400 would make ¥1,200.
    assert [o["status"] for o in outcomes] == ["completed", "completed", "declined"]
    assert outcomes[2]["decline_reason"] == "limit_exceeded"
    # With the PIN, up to ¥5,000 a day in all QR payments (¥300 + ¥800 used so far).
    large = await world.order(shop, "3900.00", "L1")
    assert (await world.pay(alice, large["payload"], card)).json()["status"] == "completed"
    one_more = await world.order(shop, "0.01", "L2")
    assert (await world.pay(alice, one_more["payload"], card)).json()["decline_reason"] == (
        "limit_exceeded"
    )


async def test_pin_and_card_state_declines(world):
    shop = await world.merchant()
    alice, card = await world.member_with_card("Alice", balance="50.00")
    order = await world.order(shop, "60.00", "X1")
    assert (await world.pay(alice, order["payload"], card)).json()["decline_reason"] == (
        "insufficient_funds"
    )
    # The declined payment released the order: it can be paid once funds are there.
    wrong = f"{(int(PIN) + 1) % 10**6:06d}"
    statuses = [(await world.pay(alice, order["payload"], card, pin=wrong)).json()["decline_reason"]
                for _ in range(5)]  # fmt: skip
    assert statuses == ["wrong_pin"] * 5
    assert (await world.pay(alice, order["payload"], card)).json()["decline_reason"] == "pin_locked"
    await world.client.post(f"/v1/cards/{card}/freeze", headers=alice.headers)
    small = await world.order(shop, "1.00", "X2")
    assert (await world.pay(alice, small["payload"], card, pin=None)).json()["decline_reason"] == (
        "card_frozen"
    )


async def test_two_phase_parking(world):
    parking = await world.merchant("Chaoyang Parking", scene="parking", mcc="7523")
    alice, card = await world.member_with_card("Alice", balance="500.00")
    code = await world.payment_code(alice, card)
    held = await world.collect(parking, code["qr_payload"], "50.00", capture=False,
                               hold_seconds=3600)  # fmt: skip
    assert held.json()["status"] == "authorized"
    assert (await world.balance(alice, card))["available"] == "450.00"
    payment = held.json()["id"]
    captured = await world.client.post(
        f"/v1/merchant/payments/{payment}/capture", json={"amount": "32.00"},
        headers=parking["headers"],
    )  # fmt: skip
    assert captured.json()["status"] == "completed"
    assert captured.json()["captured"] == "32.00"
    assert (await world.balance(alice, card))["available"] == "468.00"
    again = await world.client.post(
        f"/v1/merchant/payments/{payment}/capture", json={"amount": "1.00"},
        headers=parking["headers"],
    )  # fmt: skip
    assert (again.status_code, code_of(again)) == (409, "not_authorized")
    second = await world.collect(parking, (await world.payment_code(alice, card))["qr_payload"],
                                 "20.00", capture=False, hold_seconds=3600)  # fmt: skip
    voided = await world.client.post(
        f"/v1/merchant/payments/{second.json()['id']}/void", headers=parking["headers"]
    )
    assert voided.json()["status"] == "voided"
    third = await world.collect(parking, (await world.payment_code(alice, card))["qr_payload"],
                                "20.00", capture=False, hold_seconds=60)  # fmt: skip
    assert (await world.balance(alice, card))["available"] == "448.00"
    world.clock.advance(61)
    expired = await world.client.get(
        f"/v1/merchant/payments/{third.json()['id']}", headers=parking["headers"]
    )
    assert expired.json()["status"] == "expired"
    assert (await world.balance(alice, card))["available"] == "468.00"


async def test_refunds(world):
    shop = await world.merchant("Hema Fresh", scene="supermarket")
    other_shop = await world.merchant("Yonghui", scene="supermarket")
    alice, card = await world.member_with_card("Alice", bank="CMB", prefix="622588")
    accounts_before = {
        a.id: (a.debits_posted, a.credits_posted)
        for a in world.platform.ledger.lookup_accounts(_touched(world, shop, alice_card_id=None))
    }
    order = await world.order(shop, "123.45", "R1")
    paid = (await world.pay(alice, order["payload"], card)).json()
    pid = paid["id"]

    async def refund(amount: str, who=shop):
        return await world.client.post(f"/v1/merchant/payments/{pid}/refunds",
                                       json={"amount": amount}, headers=who["headers"])  # fmt: skip

    assert (await refund("1.00", other_shop)).status_code == 404  # only the merchant paid
    first = await refund("23.45")
    assert (first.json()["status"], first.json()["refunded"]) == ("partially_refunded", "23.45")
    too_much = await refund("100.01")
    assert (too_much.status_code, code_of(too_much)) == (422, "refund_exceeds_payment")
    rest = await refund("100.00")
    assert rest.json()["status"] == "refunded"
    assert (await world.balance(alice, card))["available"] == "1000.00"
    # A full refund returns every account the payment touched to its previous balance.
    after = {
        a.id: a.debits_posted - a.credits_posted
        for a in world.platform.ledger.lookup_accounts(list(accounts_before))
    }
    assert after == {k: d - c for k, (d, c) in accounts_before.items()}
    closed = await refund("0.01")
    assert (closed.status_code, code_of(closed)) == (409, "not_refundable")


def _touched(world, merchant, alice_card_id):
    a = AccountCode
    return [
        institution_account_id("CMB", a.INTERCHANGE_INCOME),
        institution_account_id("CMB", a.NETWORK_PAYABLE),
        institution_account_id("CUP", a.ISSUER_RECEIVABLE, "CMB"),
        institution_account_id("CUP", a.ACQUIRER_PAYABLE, "UMS"),
        institution_account_id("CUP", a.FEE_INCOME),
        institution_account_id("UMS", a.ACQUIRER_NETWORK_RECEIVABLE),
        institution_account_id("UMS", a.MDR_INCOME),
    ]


async def test_every_scene_debit_and_credit_same_and_cross_bank(world):
    alice = await world.signup(world.person("Alice"))
    pan, _ = await world.issue(alice, bank="BOC", prefix="621661", balance="5000.00")
    debit = await world.bind(alice, pan)
    credit_pan, issued = await world.issue(alice, bank="ICBC", prefix="625330", balance=None,
                                           credit_limit="5000.00")  # fmt: skip
    credit = await world.bind(alice, credit_pan, cvv=issued["cvv"])
    acquirers = ["UMS", "LKL", "BOCMS"]
    for n, (scene, mcc) in enumerate(SCENES.items()):
        shop = await world.merchant(f"Shop {n}", scene=scene, mcc=mcc, acquirer=acquirers[n % 3])
        card = debit["id"] if n % 2 == 0 else credit["id"]
        order = await world.order(shop, "12.34", f"S{n}")
        paid = await world.pay(alice, order["payload"], card)
        assert paid.json()["status"] == "completed", (scene, paid.text)
    listed = await world.client.get("/v1/payments?limit=100", headers=alice.headers)
    assert len(listed.json()["items"]) == 10
    assert (await world.balance(alice, credit["id"]))["outstanding"] == "61.70"


async def test_payment_receipts_carry_the_audit_proof_once_final(world):
    shop = await world.merchant("Wumart")
    alice, card = await world.member_with_card("Alice")
    paid = (await world.pay(alice, await world.static_code(shop), card, amount="66.60")).json()
    path = f"/v1/payments/{paid['id']}/receipt"
    assert (await world.client.get(path, headers=alice.headers)).json()["audit"] is None
    trust = world.publish_checkpoint()
    for receipt in (
        await world.client.get(path, headers=alice.headers),
        await world.client.get(f"/v1/merchant/payments/{paid['id']}/receipt",
                               headers=shop["headers"]),
    ):  # fmt: skip
        verified = verify_receipt(receipt.json()["audit"], trust)
        assert [leg.amount for leg in verified.leaf.transfers] == [
            t.amount for t in world.platform.ledger.lookup_transfers(ledger_ids(int(paid["id"]),
                                                                             "purchase"))
            if t.amount
        ]  # fmt: skip
