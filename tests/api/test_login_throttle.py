"""Password guessing over HTTP, on SQLite and PostgreSQL: login (``POST /v1/sessions``) backs off
after each wrong password and locks the account after ``ACCOUNT_FAILURES_MAX`` in a row, for a
time that grows with repeated lockouts and ends on its own; one source address is refused after
``SOURCE_FAILURES_MAX`` failures whatever the accounts; concurrent guesses cannot pass the count;
and the password checks of ``PUT /v1/me/pin`` and ``PUT /v1/me/limits`` count against the same
lock."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from world import PASSWORD, PIN, World, code_of

from flashpay.wallet.throttle import (
    ACCOUNT_BACKOFF_SECONDS,
    ACCOUNT_FAILURES_MAX,
    ACCOUNT_LOCK_SECONDS,
    SOURCE_FAILURES_MAX,
    SOURCE_LOCK_SECONDS,
)

pytestmark = pytest.mark.anyio

WRONG = "not the password"


async def _login(world: World, phone: str, password: str) -> httpx.Response:
    return await world.client.post("/v1/sessions", json={"phone": phone, "password": password})


def _refused(response: httpx.Response, code: str) -> int:
    """Assert a 429 with ``code`` and a Retry-After; its seconds."""
    assert (response.status_code, code_of(response)) == (429, code), response.text
    retry_after = int(response.headers["retry-after"])
    assert response.json()["error"]["details"] == {"retry_after_seconds": retry_after}
    return retry_after


async def test_25_wrong_passwords_then_the_right_one_do_not_log_in(world):
    person = await world.signup(world.person())
    answers = [await _login(world, person.phone, WRONG) for _ in range(25)]
    assert [a.status_code for a in answers[:2]] == [401, 401]  # the first failure is free
    for answer in answers[2:]:
        _refused(answer, "too_many_attempts")
    _refused(await _login(world, person.phone, PASSWORD), "too_many_attempts")


async def test_failures_back_off_then_lock_for_a_growing_time_that_ends_on_its_own(world):
    person = await world.signup(world.person())
    for lockout, lock_seconds in enumerate((ACCOUNT_LOCK_SECONDS, 2 * ACCOUNT_LOCK_SECONDS)):
        for failure in range(1, ACCOUNT_FAILURES_MAX + 1):
            wrong = await _login(world, person.phone, WRONG)
            assert (wrong.status_code, code_of(wrong)) == (401, "invalid_login"), (lockout, failure)
            if 1 < failure < ACCOUNT_FAILURES_MAX:
                backoff = 2 ** (failure - 2) * ACCOUNT_BACKOFF_SECONDS
                waited = _refused(await _login(world, person.phone, WRONG), "too_many_attempts")
                assert waited == backoff
                world.clock.advance(backoff)
        # Locked: even the right password is refused until the lock ends on its own.
        assert (
            _refused(await _login(world, person.phone, PASSWORD), "account_locked") == lock_seconds
        )
        world.clock.advance(lock_seconds - 1)
        _refused(await _login(world, person.phone, PASSWORD), "account_locked")
        world.clock.advance(1)
    right = await _login(world, person.phone, PASSWORD)
    assert right.status_code == 201, right.text
    # A login resets the counts: the next wrong password is a first failure again.
    assert (await _login(world, person.phone, WRONG)).status_code == 401
    assert (await _login(world, person.phone, PASSWORD)).status_code == 201


async def test_one_source_guessing_across_accounts_is_refused(world):
    owner = await world.signup(world.person())
    async with world.client_from("203.0.113.7") as attacker:
        for n in range(SOURCE_FAILURES_MAX):
            wrong = await attacker.post(
                "/v1/sessions", json={"phone": f"1390000{n:04d}", "password": WRONG}
            )
            assert wrong.status_code == 401, (n, wrong.text)
        fresh = await attacker.post(
            "/v1/sessions", json={"phone": "13911112222", "password": WRONG}
        )
        assert _refused(fresh, "too_many_attempts") == SOURCE_LOCK_SECONDS
        owners_login = {"phone": owner.phone, "password": PASSWORD}
        _refused(await attacker.post("/v1/sessions", json=owners_login), "too_many_attempts")
        # Another source is not affected, and the lock of the source ends on its own.
        assert (await world.client.post("/v1/sessions", json=owners_login)).status_code == 201
        world.clock.advance(SOURCE_LOCK_SECONDS)
        assert (await attacker.post("/v1/sessions", json=owners_login)).status_code == 201


async def test_concurrent_guesses_cannot_pass_the_count(world):
    person = await world.signup(world.person())
    answers = await asyncio.gather(*(_login(world, person.phone, WRONG) for _ in range(16)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [401, 401] + [429] * 14  # the clock stands still: no back-off passes


async def test_pin_and_limits_password_checks_count_against_the_login_lock(world):
    person = await world.signup(world.person())
    pin_body = {"pin": "246813", "password": WRONG}
    limits_body = {"free_per_payment": "100.00", "qr_daily_limit": "1000.00", "password": WRONG}
    for failure in range(1, ACCOUNT_FAILURES_MAX + 1):
        if failure % 2:
            answer = await world.client.put("/v1/me/pin", json=pin_body, headers=person.headers)
        else:
            answer = await world.client.put(
                "/v1/me/limits", json=limits_body, headers=person.headers
            )
        assert (answer.status_code, code_of(answer)) == (403, "wrong_password"), failure
        if 1 < failure < ACCOUNT_FAILURES_MAX:
            again = await world.client.put("/v1/me/pin", json=pin_body, headers=person.headers)
            world.clock.advance(_refused(again, "too_many_attempts"))
    right_pin = {"pin": "246813", "password": PASSWORD}
    right_limits = limits_body | {"password": PASSWORD}
    _refused(await world.client.put("/v1/me/pin", json=right_pin, headers=person.headers),
             "account_locked")  # fmt: skip
    _refused(await world.client.put("/v1/me/limits", json=right_limits, headers=person.headers),
             "account_locked")  # fmt: skip
    _refused(await _login(world, person.phone, PASSWORD), "account_locked")
    world.clock.advance(ACCOUNT_LOCK_SECONDS)
    changed = await world.client.put("/v1/me/pin", json=right_pin, headers=person.headers)
    assert changed.status_code == 204, changed.text
    assert right_pin["pin"] != PIN
