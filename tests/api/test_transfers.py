"""P2P transfers end to end over HTTP, on SQLite and PostgreSQL: same-bank and cross-bank, by
phone and by card number, the postings of §4 to the fen, every decline reason, bad requests,
receipts, pagination, and the books after every flow."""

from __future__ import annotations

import pytest
from world import PASSWORD, PIN, code_of

from flashpay.cards.numbers import generate_card_number
from flashpay.chain.receipt import verify_receipt
from flashpay.institutions.chart import AccountCode, institution_account_id
from flashpay.ledger.ids import derive_id

pytestmark = pytest.mark.anyio
DAY = 24 * 3600


async def test_cross_bank_by_phone_posts_the_chain_of_section_4(world):
    alice, alice_card = await world.member_with_card("Alice", bank="BOC", prefix="621661")
    bob, bob_card = await world.member_with_card("Bob", bank="ICBC", prefix="622202",
                                                 balance="5.00")  # fmt: skip
    sent = await world.transfer(alice, from_card_id=alice_card, amount="123.45",
                                to_phone=bob.phone, memo="dinner")  # fmt: skip
    assert sent.status_code == 201, sent.text
    body = sent.json()
    assert (body["status"], body["decline_reason"], body["amount_minor"]) == (
        "completed",
        None,
        12345,
    )
    assert body["recipient"] == bob.phone[:3] + "****" + bob.phone[-4:]
    assert len(body["voucher"]) == 27
    assert (await world.balance(alice, alice_card))["available"] == "876.55"
    assert (await world.balance(bob, bob_card))["available"] == "128.45"
    # The three linked legs: deposit → BOC network_payable; network issuer_receivable[BOC] →
    # issuer_payable[ICBC]; ICBC network_receivable → deposit.
    transfer_id = int(body["id"])
    legs = world.platform.ledger.lookup_transfers(
        [derive_id("flashpay.p2p", f"{transfer_id}:{n}") for n in range(3)]
    )
    a = AccountCode
    assert [(t.debit_account_id, t.credit_account_id, t.amount) for t in legs][1:] == [
        (
            institution_account_id("CUP", a.ISSUER_RECEIVABLE, "BOC"),
            institution_account_id("CUP", a.ISSUER_PAYABLE, "ICBC"),
            12345,
        ),
        (institution_account_id("ICBC", a.NETWORK_RECEIVABLE), legs[2].credit_account_id, 12345),
    ]
    assert legs[0].credit_account_id == institution_account_id("BOC", a.NETWORK_PAYABLE)
    receipt = await world.client.get(f"/v1/transfers/{body['id']}/receipt", headers=alice.headers)
    assert receipt.json()["voucher"] == body["voucher"]
    assert receipt.json()["amount"] == "123.45"


async def test_same_bank_to_a_card_number_is_one_posting(world):
    alice, alice_card = await world.member_with_card("Alice")
    stranger = world.person("Carol")  # not a wallet user: a card number is enough
    pan, _ = await world.issue(stranger, bank="BOC", prefix="621785", balance="0.00")
    sent = await world.transfer(alice, from_card_id=alice_card, amount="50", to_card_number=pan)
    body = sent.json()
    assert body["status"] == "completed"
    assert body["recipient"] == pan[:6] + "******" + pan[-4:]
    legs = world.platform.ledger.lookup_transfers(
        [derive_id("flashpay.p2p", f"{body['id']}:{n}") for n in range(3)]
    )
    assert len(legs) == 1
    assert legs[0].amount == 5000


async def test_credit_card_as_source_uses_the_credit_line(world):
    alice = await world.signup(world.person("Alice"))
    pan, issued = await world.issue(alice, bank="CMB", prefix="622575", balance=None,
                                    credit_limit="300.00")  # fmt: skip
    card = await world.bind(alice, pan, cvv=issued["cvv"])
    bob, _ = await world.member_with_card("Bob")
    ok = await world.transfer(alice, from_card_id=card["id"], amount="250.00", to_phone=bob.phone)
    assert ok.json()["status"] == "completed"
    over = await world.transfer(alice, from_card_id=card["id"], amount="50.01", to_phone=bob.phone)
    assert over.json()["decline_reason"] == "insufficient_funds"
    balance = await world.balance(alice, card["id"])
    assert (balance["outstanding"], balance["available"]) == ("250.00", "50.00")


async def test_every_decline_reason(world):
    alice, card = await world.member_with_card("Alice", balance="100000.00")
    bob, _ = await world.member_with_card("Bob")

    async def reason(**body) -> str:
        body.setdefault("from_card_id", card)
        body.setdefault("amount", "1.00")
        body.setdefault("to_phone", bob.phone)
        response = await world.transfer(alice, **body)
        assert response.status_code == 201, response.text
        assert response.json()["status"] in ("declined", "completed")
        return str(response.json()["decline_reason"] or "completed")

    assert await reason(amount="200000.00") == "limit_exceeded"  # per transfer: ¥50,000
    assert await reason(amount="40000.00") == "completed"
    assert await reason(amount="10000.01") == "limit_exceeded"  # the card's ¥50,000 a day
    assert await reason(to_phone="13912345678") == "recipient_not_found"
    unknown = generate_card_number("622202", 16).reveal()
    world.guard.secrets.append(unknown)
    assert await reason(to_phone=None, to_card_number=unknown) == "recipient_not_found"
    own_pan, _ = await world.issue(alice)
    own = await world.bind(alice, own_pan)
    assert (
        await reason(from_card_id=own["id"], to_phone=None, to_card_number=own_pan) == "same_card"
    )
    await world.client.post(f"/v1/cards/{card}/freeze", headers=alice.headers)
    assert await reason() == "card_frozen"
    await world.client.post(f"/v1/cards/{card}/unfreeze", headers=alice.headers)
    wrong = f"{(int(PIN) + 1) % 10**6:06d}"
    assert [await reason(pin=wrong) for _ in range(5)] == ["wrong_pin"] * 5
    assert await reason() == "pin_locked"  # the right PIN no longer helps
    world.clock.advance(30 * 60 + 1)
    assert await reason() == "completed"
    # A day later, the daily limit starts again (Beijing day); the session has expired.
    world.clock.advance(DAY)
    await world.login(alice)
    assert await reason(amount="10000.01") == "completed"


async def test_issuer_side_states_decline(world):
    alice, card = await world.member_with_card("Alice")
    bob = await world.signup(world.person("Bob"))
    pan, issued = await world.issue(bob, bank="ICBC", prefix="622202")
    await world.bind(bob, pan)
    closed = await world.client.post(
        f"/v1/issuer/cards/{issued['id']}/close", headers=world.keys["ICBC"]
    )
    assert closed.json()["status"] == "closed"
    sent = await world.transfer(alice, from_card_id=card, amount="1", to_phone=bob.phone)
    assert sent.json()["decline_reason"] == "recipient_unavailable"
    expiring = await world.signup(world.person("Dan"))
    pan, issued = await world.issue(expiring, expiry="11/26")  # valid through November 2026
    own = await world.bind(expiring, pan, expiry="11/26")
    frozen = await world.client.post(
        f"/v1/issuer/cards/{issued['id']}/freeze", headers=world.keys["BOC"]
    )
    assert frozen.json()["status"] == "frozen"
    first = await world.transfer(expiring, from_card_id=own["id"], amount="1", to_phone=alice.phone)
    assert first.json()["decline_reason"] == "card_frozen"
    await world.client.post(f"/v1/issuer/cards/{issued['id']}/unfreeze", headers=world.keys["BOC"])
    world.clock.advance(20 * DAY)  # into December 2026
    await world.login(expiring)
    late = await world.transfer(expiring, from_card_id=own["id"], amount="1", to_phone=alice.phone)
    assert late.json()["decline_reason"] == "card_expired"
    nopin = await world.signup(world.person("Eve"), pin=None)
    pan, _ = await world.issue(nopin)
    eve = await world.bind(nopin, pan)
    unset = await world.transfer(nopin, from_card_id=eve["id"], amount="1", to_phone=alice.phone)
    assert unset.json()["decline_reason"] == "pin_not_set"


async def test_insufficient_funds_gives_the_limit_back(world):
    alice, card = await world.member_with_card("Alice", balance="30000.00")
    bob, _ = await world.member_with_card("Bob")
    short = await world.transfer(alice, from_card_id=card, amount="30000.01", to_phone=bob.phone)
    assert short.json()["decline_reason"] == "insufficient_funds"
    # Had the declined ¥30,000.01 stayed reserved, ¥20,000 more would pass the card's ¥50,000.
    full = await world.transfer(alice, from_card_id=card, amount="30000.00", to_phone=bob.phone)
    assert full.json()["status"] == "completed"
    assert (await world.balance(alice, card))["available"] == "0.00"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"amount": "0"}, 422, "invalid_amount"),
        ({"amount": "-5.00"}, 422, "invalid_amount"),
        ({"amount": "1.001"}, 422, "invalid_amount"),
        ({"amount": "ten"}, 422, "invalid_amount"),
        ({"amount": 10}, 422, "validation_error"),  # a JSON number is refused: no floats
        ({"currency": "USD"}, 422, "unsupported_currency"),
        ({"to_card_number": "6216610000000001"}, 422, "invalid_recipient"),  # both
        ({"to_phone": None}, 422, "invalid_recipient"),  # neither
        ({"to_phone": "555"}, 422, "invalid_phone"),
        ({"to_phone": None, "to_card_number": "6216610000000002"}, 422, "invalid_card_number"),
        ({"from_card_id": 999999}, 404, "not_found"),
        ({"surprise": 1}, 422, "validation_error"),
    ],
    ids=["zero", "negative", "fraction", "text", "json_number", "currency", "both", "neither",
         "phone", "luhn", "unknown_card", "extra_field"],
)  # fmt: skip
async def test_bad_requests_create_nothing(world, body, status, code):
    alice, card = await world.member_with_card("Alice")
    bob, _ = await world.member_with_card("Bob")
    request = {"from_card_id": card, "amount": "1.00", "to_phone": bob.phone, "pin": PIN}
    request.update(body)
    response = await world.client.post("/v1/transfers", json=request, headers=alice.headers)
    assert (response.status_code, code_of(response)) == (status, code)
    listed = await world.client.get("/v1/transfers", headers=alice.headers)
    assert listed.json()["items"] == []


async def test_lists_receipts_and_privacy(world):
    alice, card = await world.member_with_card("Alice")
    bob, _ = await world.member_with_card("Bob")
    ids = []
    for n in range(5):
        sent = await world.transfer(alice, from_card_id=card, amount=f"{n + 1}.00",
                                    to_phone=bob.phone)  # fmt: skip
        ids.append(sent.json()["id"])
    declined = await world.transfer(alice, from_card_id=card, amount="1", to_phone="13900000000")
    ids.append(declined.json()["id"])
    page1 = await world.client.get("/v1/transfers?limit=4", headers=alice.headers)
    page2 = await world.client.get(
        f"/v1/transfers?limit=4&cursor={page1.json()['next_cursor']}", headers=alice.headers
    )
    seen = [t["id"] for t in page1.json()["items"] + page2.json()["items"]]
    assert seen == list(reversed(ids))
    assert page2.json()["next_cursor"] is None
    no_receipt = await world.client.get(f"/v1/transfers/{ids[-1]}/receipt", headers=alice.headers)
    assert (no_receipt.status_code, code_of(no_receipt)) == (409, "no_receipt")
    for path in (f"/v1/transfers/{ids[0]}", f"/v1/transfers/{ids[0]}/receipt"):
        other = await world.client.get(path, headers=bob.headers)
        assert (other.status_code, code_of(other)) == (404, "not_found")
    assert (await world.client.get("/v1/transfers", headers=bob.headers)).json()["items"] == []
    login = await world.client.post(
        "/v1/sessions", json={"phone": alice.phone, "password": PASSWORD}
    )
    assert login.status_code == 201


async def test_the_receipt_carries_an_audit_proof_once_a_checkpoint_is_final(world):
    alice, card = await world.member_with_card("Alice")
    bob, _ = await world.member_with_card("Bob", bank="ICBC", prefix="622202")
    sent = (await world.transfer(alice, from_card_id=card, amount="8.88",
                                 to_phone=bob.phone)).json()  # fmt: skip
    path = f"/v1/transfers/{sent['id']}/receipt"
    assert (await world.client.get(path, headers=alice.headers)).json()["audit"] is None
    trust = world.publish_checkpoint()
    audit = (await world.client.get(path, headers=alice.headers)).json()["audit"]
    verified = verify_receipt(audit, trust)
    legs = verified.leaf.transfers
    assert [leg.amount for leg in legs] == [888, 888, 888]
    assert legs[0].id == derive_id("flashpay.p2p", f"{sent['id']}:0")
