"""Card-binding starts are bounded per Beijing day, on SQLite and PostgreSQL: per card, per user
and per phone the one-time code is texted to. Each start sends an SMS with a fresh code (five
guesses each), so without a bound one card could be bound, and its phone texted, without end."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from world import Person, World, code_of

from flashpay.wallet.throttle import (
    BINDING_STARTS_PER_CARD_MAX,
    BINDING_STARTS_PER_PHONE_MAX,
    BINDING_STARTS_PER_USER_MAX,
    seconds_to_next_beijing_day,
)

pytestmark = pytest.mark.anyio


async def _start(world: World, person: Person, pan: str, expiry: str = "12/30") -> httpx.Response:
    return await world.client.post(
        "/v1/cards/bindings", json={"card_number": pan, "expiry": expiry}, headers=person.headers
    )


def _limit_reached(world: World, response: httpx.Response) -> None:
    assert (response.status_code, code_of(response)) == (429, "binding_limit_reached")
    assert int(response.headers["retry-after"]) == seconds_to_next_beijing_day(world.clock.now_ns())


def _texts(world: World) -> int:
    return sum(1 for m in world.notifier.messages if m.purpose == "card_binding")


async def test_one_card_is_started_at_most_the_card_limit_a_day(world):
    person = await world.signup(world.person())
    pan, _ = await world.issue(person)
    for n in range(BINDING_STARTS_PER_CARD_MAX):
        assert (await _start(world, person, pan)).status_code == 201, n
    _limit_reached(world, await _start(world, person, pan))
    assert _texts(world) == BINDING_STARTS_PER_CARD_MAX  # no more codes were sent
    # Refused starts count too (each is a guess at the card's details), and the day ends.
    world.clock.advance(seconds_to_next_beijing_day(world.clock.now_ns()))
    await world.login(person)  # the session lasted a day
    wrong = [await _start(world, person, pan, expiry="11/30") for _ in range(5)]
    assert {code_of(r) for r in wrong} == {"card_not_recognised"}
    _limit_reached(world, await _start(world, person, pan))
    world.clock.advance(seconds_to_next_beijing_day(world.clock.now_ns()))
    await world.login(person)
    binding = await world.bind(person, pan)
    assert binding["last4"] == pan[-4:]


async def test_one_user_starts_at_most_the_user_limit_a_day(world):
    person = await world.signup(world.person())
    per_card = BINDING_STARTS_PER_CARD_MAX - 1
    cards = -(-BINDING_STARTS_PER_USER_MAX // per_card)  # each on its own phone
    pans = [(await world.issue(person, phone=f"1370000{n:04d}"))[0] for n in range(cards + 1)]
    started = 0
    for pan in pans[:-1]:
        for _ in range(per_card):
            if started < BINDING_STARTS_PER_USER_MAX:
                assert (await _start(world, person, pan)).status_code == 201
                started += 1
    _limit_reached(world, await _start(world, person, pans[-1]))


async def test_one_phone_is_texted_at_most_the_phone_limit_a_day(world):
    # Two users whose cards the issuer has on one phone: together they reach the phone's limit.
    victim_phone = "13700009999"
    people = [await world.signup(world.person(name)) for name in ("Li Wei", "Zhao Lei")]
    per_card = BINDING_STARTS_PER_CARD_MAX - 1
    started = 0
    while started < BINDING_STARTS_PER_PHONE_MAX:
        person = people[started % 2]
        pan, _ = await world.issue(person, phone=victim_phone)
        for _ in range(min(per_card, BINDING_STARTS_PER_PHONE_MAX - started)):
            assert (await _start(world, person, pan)).status_code == 201
            started += 1
    pan, _ = await world.issue(people[0], phone=victim_phone)
    _limit_reached(world, await _start(world, people[0], pan))
    assert sum(1 for m in world.notifier.messages if m.phone == victim_phone) == started


async def test_concurrent_starts_cannot_pass_the_card_limit(world):
    person = await world.signup(world.person())
    pan, _ = await world.issue(person)
    answers = await asyncio.gather(*(_start(world, person, pan) for _ in range(12)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(201) == BINDING_STARTS_PER_CARD_MAX, statuses
    assert set(statuses) <= {201, 429}
