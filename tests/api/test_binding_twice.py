"""Binding one card twice into one wallet, on SQLite and PostgreSQL: the second binding is
refused at confirmation too, not only when it starts (two bindings started before either was
confirmed used to both bind the card: two wallet cards, two tokens, two of the 15 places)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.anyio


async def test_two_bindings_of_one_card_bind_it_once(world):
    person = await world.signup(world.person("Guo Lan"))
    pan, _ = await world.issue(person)
    bindings = []
    for _ in range(2):
        started = await world.client.post(
            "/v1/cards/bindings",
            json={"card_number": pan, "expiry": "12/30"},
            headers=person.headers,
        )
        assert started.status_code == 201, started.text
        bindings.append(started.json()["binding_id"])
    answers = []
    for binding_id in bindings:
        otp = world.notifier.last_code("card_binding", str(binding_id))
        confirmed = await world.client.post(
            f"/v1/cards/bindings/{binding_id}/confirm", json={"otp": otp}, headers=person.headers
        )
        answers.append((confirmed.status_code, confirmed.json().get("error", {}).get("code")))
    assert answers == [(201, None), (409, "card_already_bound")]
    cards = (await world.client.get("/v1/cards", headers=person.headers)).json()["items"]
    assert len(cards) == 1
    # Unbound, the card can be bound again through a new binding.
    await world.client.delete(f"/v1/cards/{cards[0]['id']}", headers=person.headers)
    again = await world.bind(person, pan)
    assert again["is_default"] is True
