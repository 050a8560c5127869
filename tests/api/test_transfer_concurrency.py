"""Concurrency on PostgreSQL through the real ASGI app (requests run on its thread pool, each on
its own database connection): funds, daily limits, idempotency keys, dynamic orders and payment
codes hold exactly."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from world import PIN, checked_world

from flashpay.payments import limits

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


@pytest.fixture
async def world(postgres_url, leak_guard):
    async with checked_world(postgres_url, leak_guard) as w:
        yield w


async def test_fifty_transfers_from_a_card_that_covers_twenty(world):
    alice, card = await world.member_with_card("Alice", balance="200.00")
    bob, bob_card = await world.member_with_card("Bob", bank="ICBC", prefix="622202",
                                                 balance="0.00")  # fmt: skip
    responses = await asyncio.gather(
        *(
            world.transfer(alice, from_card_id=card, amount="10.00", to_phone=bob.phone)
            for _ in range(50)
        )
    )
    outcomes = Counter(
        (r.status_code, r.json()["status"], r.json()["decline_reason"]) for r in responses
    )
    assert outcomes == {
        (201, "completed", None): 20,
        (201, "declined", "insufficient_funds"): 30,
    }
    assert (await world.balance(alice, card))["available"] == "0.00"
    assert (await world.balance(bob, bob_card))["available"] == "200.00"
    day = limits.beijing_day(world.clock.now_ns())
    used = limits.used(platform=world.platform, scope=f"user:{alice.user_id}", day=day)
    assert used == 20 * 1000  # declined transfers gave their reservations back


async def test_the_daily_card_limit_holds_under_concurrency(world):
    alice, card = await world.member_with_card("Alice", balance="100000.00")
    bob, _ = await world.member_with_card("Bob")
    responses = await asyncio.gather(
        *(
            world.transfer(alice, from_card_id=card, amount="2000.00", to_phone=bob.phone)
            for _ in range(40)
        )
    )
    outcomes = Counter((r.json()["status"], r.json()["decline_reason"]) for r in responses)
    # ¥50,000 a day per card: exactly 25 transfers of ¥2,000.
    assert outcomes == {("completed", None): 25, ("declined", "limit_exceeded"): 15}
    day = limits.beijing_day(world.clock.now_ns())
    assert (await world.balance(alice, card))["available"] == "50000.00"
    used = limits.used(platform=world.platform, scope=f"user:{alice.user_id}", day=day)
    assert used == limits.DAILY_PER_CARD_MAX


async def test_ten_concurrent_retries_with_one_key_post_once(world):
    alice, card = await world.member_with_card("Alice")
    bob, bob_card = await world.member_with_card("Bob")
    body = {"from_card_id": card, "amount": "12.34", "to_phone": bob.phone, "pin": PIN}
    headers = {**alice.headers, "Idempotency-Key": "pay-bob-dinner-1"}
    responses = await asyncio.gather(
        *(world.client.post("/v1/transfers", json=body, headers=headers) for _ in range(10))
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.content for r in responses}) == 1  # byte-identical answers
    listed = await world.client.get("/v1/transfers", headers=alice.headers)
    assert len(listed.json()["items"]) == 1
    assert (await world.balance(bob, bob_card))["available"] == "1012.34"
    changed = await world.client.post(
        "/v1/transfers", json={**body, "amount": "99.00"}, headers=headers
    )
    assert changed.status_code == 422
    assert changed.json()["error"]["code"] == "idempotency_key_reused"


async def test_one_dynamic_order_paid_by_twenty_concurrent_requests(world):
    shop = await world.merchant("Wumart")
    payers = [await world.member_with_card(f"Payer {n}") for n in range(4)]
    order = await world.order(shop, "25.00", "RACE-1")
    responses = await asyncio.gather(
        *(
            world.pay(person, order["payload"], card)
            for n in range(20)
            for person, card in [payers[n % 4]]
        )
    )
    outcomes = Counter((r.json()["status"], r.json()["decline_reason"]) for r in responses)
    assert outcomes == {("completed", None): 1, ("declined", "order_already_paid"): 19}


async def test_one_payment_code_used_by_twenty_terminals_at_once(world):
    shops = [await world.merchant(f"Shop {n}") for n in range(4)]
    alice, card = await world.member_with_card("Alice")
    code = (await world.payment_code(alice, card))["qr_payload"]
    responses = await asyncio.gather(
        *(world.collect(shops[n % 4], code, "3.00") for n in range(20))
    )
    outcomes = Counter((r.json()["status"], r.json()["decline_reason"]) for r in responses)
    assert outcomes == {("completed", None): 1, ("declined", "code_already_used"): 19}
    assert (await world.balance(alice, card))["available"] == "997.00"


async def test_the_daily_qr_limit_holds_for_concurrent_payments(world):
    shop = await world.merchant("Wumart")
    alice, card = await world.member_with_card("Alice", balance="10000.00")
    first = await world.order(shop, "4990.00", "BIG")
    assert (await world.pay(alice, first["payload"], card)).json()["status"] == "completed"
    orders = [await world.order(shop, "5.00", f"SMALL-{n}") for n in range(10)]
    responses = await asyncio.gather(*(world.pay(alice, o["payload"], card) for o in orders))
    outcomes = Counter((r.json()["status"], r.json()["decline_reason"]) for r in responses)
    # ¥4,990 of the ¥5,000 daily limit used: exactly two ¥5 payments fit.
    assert outcomes == {("completed", None): 2, ("declined", "limit_exceeded"): 8}
