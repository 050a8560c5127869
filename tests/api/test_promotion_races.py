"""Promotion budgets under concurrency on PostgreSQL, through real payments: the ASGI app's thread
pool runs each request on its own connection, and the batch path runs beside it in a thread.
Never a use or a fen beyond the budget, a coupon once, the books balanced after
(``checked_world``)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from promo_kit import campaign, expense, fen, state
from world import PIN, checked_world

from flashpay.money import Money
from flashpay.payments.attempts import Payment, ScanRequest
from flashpay.payments.submit import submit_payments

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


@pytest.fixture
async def world(postgres_url, leak_guard):
    async with checked_world(postgres_url, leak_guard) as w:
        yield w


async def _payers(world: Any, count: int) -> list[tuple[Any, int]]:
    return [await world.member_with_card(f"Payer {n}", balance="5000.00") for n in range(count)]


async def _pay_all(world: Any, payers: list[tuple[Any, int]], code: str, amount: str, each: int):
    calls = [world.pay(person, code, card, amount=amount) for person, card in payers
             for _ in range(each)]  # fmt: skip
    responses = await asyncio.gather(*calls)
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses][:3]
    return [r.json() for r in responses]


async def test_a_budget_of_twenty_uses_and_sixty_concurrent_payments(world):
    boc = await campaign(world, world.keys["BOC"], "twenty", budget={"uses": 20},
                         benefit={"kind": "amount_off", "off_minor": 1000})  # fmt: skip
    shop = await world.merchant("Wumart")
    code = await world.static_code(shop)
    # ¥30 × 15 per payer: within a static code's ¥500 a day
    paid = await _pay_all(world, await _payers(world, 4), code, "30.00", 15)
    assert Counter((p["status"], p["discount"]) for p in paid) == {
        ("completed", "10.00"): 20,
        ("completed", "0.00"): 40,
    }
    found = await state(world, world.keys["BOC"], boc)
    assert (found["state"], found["budget"]["uses"]) == ("exhausted", 20)
    assert expense(world, "BOC") == 20 * 10_00


async def test_a_money_budget_lands_exactly_on_zero(world):
    cup = await campaign(world, world.keys["admin"], "zero",
                         benefit={"kind": "amount_off", "off_minor": 700},
                         budget={"money_minor": 7_000})  # fmt: skip
    shop = await world.merchant("Wumart")
    code = await world.static_code(shop)
    paid = await _pay_all(world, await _payers(world, 3), code, "20.00", 10)
    assert sum(fen(p["discount"]) for p in paid) == 7_000
    assert Counter(p["discount"] for p in paid) == {"7.00": 10, "0.00": 20}
    found = await state(world, world.keys["admin"], cup)
    assert (found["state"], found["budget"]["money_left"]) == ("exhausted", "0.00")
    assert expense(world, "CUP") == 7_000


async def test_one_coupon_redeemed_from_two_devices_at_once_counts_once(world):
    shop = await world.merchant("Bakery")
    coupon = await campaign(
        world, world.keys["BOC"], "cpn", benefit={"kind": "amount_off", "off_minor": 500},
        coupon={"valid_seconds": 86_400, "claimable": True},
    )  # fmt: skip
    grace, card = await world.member_with_card("Grace")
    claimed = await world.client.post(
        f"/v1/promotions/campaigns/{coupon}/coupons",
        headers={**grace.headers, "Idempotency-Key": "claim"},
    )
    assert claimed.status_code == 201, claimed.text
    code = await world.static_code(shop)
    body = {"payload": code, "card_id": card, "amount": "12.00", "pin": PIN}
    phone, tablet = world.client_from("10.0.0.1"), world.client_from("10.0.0.2")
    async with phone, tablet:
        responses = await asyncio.gather(*(
            device.post("/v1/payments/qr", json=body,
                        headers={**grace.headers, "Idempotency-Key": f"d{n}"})
            for n, device in enumerate((phone, tablet) * 3)
        ))  # fmt: skip
    assert Counter(r.json()["discount"] for r in responses) == {"5.00": 1, "0.00": 5}
    assert expense(world, "BOC") == 5_00


async def test_a_batch_and_single_requests_race_on_one_budget(world):
    boc = await campaign(world, world.keys["BOC"], "race", budget={"uses": 15},
                         benefit={"kind": "amount_off", "off_minor": 1000})  # fmt: skip
    shop = await world.merchant("Wumart")
    code = await world.static_code(shop)
    payers = await _payers(world, 4)
    batch = [
        ScanRequest(person.user_id, code, card, Money.of(30_00), PIN)
        for person, card in payers[:2]
        for _ in range(10)
    ]
    singles = _pay_all(world, payers[2:], code, "30.00", 10)
    batched, one_by_one = await asyncio.gather(
        asyncio.to_thread(submit_payments, platform=world.platform, requests=batch), singles
    )
    assert all(isinstance(p, Payment) and p.status.value == "completed" for p in batched)
    assert {p["status"] for p in one_by_one} == {"completed"}
    discounts = [p.discount for p in batched if isinstance(p, Payment)] + [
        fen(p["discount"]) for p in one_by_one
    ]
    assert Counter(discounts) == {10_00: 15, 0: 25}
    assert (await state(world, world.keys["BOC"], boc))["budget"]["uses"] == 15
    assert expense(world, "BOC") == 15 * 10_00
