"""Exactly once for what a POST creates besides money (issue 12): users, card bindings, bound
cards, orders, terminals, merchants, revocations.

The first try's process dies after the effect committed and before its answer was stored; the
retry (same Idempotency-Key, same body) must answer what the first try made, not make it again
— and not answer a conflict about itself (``phone_already_registered``, ``binding_closed``,
``duplicate_bill_number``, ``api_key_already_revoked``), as it did before keys were bound. On
SQLite and PostgreSQL, books proven after each test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from flashpay.api import idempotency as api_idempotency
from flashpay.api.idempotency import IDEMPOTENCY_LEASE_SECONDS, IdempotencyStore
from flashpay.app import create_platform_app
from flashpay.auth.models import api_keys
from flashpay.merchants.models import merchants, qr_orders, terminals
from flashpay.wallet.models import wallet_bindings, wallet_cards, wallet_users

pytestmark = pytest.mark.anyio

KINDS = ["register", "bind_start", "bind_confirm", "order", "terminal", "revoke"]


class DiedError(RuntimeError):
    """The first try's process stops here."""


def _count(world: Any, table: sa.Table, *where: Any) -> Callable[[], int]:
    def count() -> int:
        with world.platform.engine.connect() as connection:
            query = sa.select(sa.func.count()).select_from(table).where(*where)
            return int(connection.execute(query).scalar_one())

    return count


async def _case(world: Any, kind: str) -> tuple[str, dict[str, Any], dict[str, str], Any]:
    """(path, body, headers, count of the effect) for one kind of POST."""
    if kind == "register":
        person = world.person("New User")
        body = {"phone": person.phone, "name": person.name, "id_number": person.id_number,
                "password": "correct horse battery"}  # fmt: skip
        return (
            "/v1/users",
            body,
            {},
            _count(world, wallet_users, wallet_users.c.phone == person.phone),
        )
    if kind in ("bind_start", "bind_confirm"):
        person = await world.signup(world.person("Binder"))
        pan, _ = await world.issue(person)
        body = {"card_number": pan, "expiry": "12/30"}
        if kind == "bind_start":
            count = _count(world, wallet_bindings, wallet_bindings.c.user_id == person.user_id)
            return "/v1/cards/bindings", body, person.headers, count
        started = await world.client.post("/v1/cards/bindings", json=body, headers=person.headers)
        binding_id = started.json()["binding_id"]
        otp = world.notifier.last_code("card_binding", str(binding_id))
        count = _count(world, wallet_cards, wallet_cards.c.user_id == person.user_id)
        path = f"/v1/cards/bindings/{binding_id}/confirm"
        return path, {"otp": otp}, person.headers, count
    merchant = await world.merchant("Retry Mart")
    if kind == "order":
        count = _count(world, qr_orders, qr_orders.c.merchant_id == merchant["id"])
        body = {"amount": "18.80", "bill_number": "B-RETRY-1"}
        return "/v1/merchant/orders", body, merchant["headers"], count
    if kind == "terminal":
        count = _count(world, terminals, terminals.c.merchant_id == merchant["id"])
        return "/v1/merchant/terminals", {}, merchant["headers"], count
    listed = await world.client.get(
        f"/v1/admin/api-keys?principal_kind=merchant&principal_id={merchant['id']}",
        headers=world.keys["admin"],
    )
    key_id = listed.json()["items"][0]["id"]
    count = _count(world, api_keys, api_keys.c.id == key_id, api_keys.c.revoked_at_ns.is_not(None))
    return f"/v1/admin/api-keys/{key_id}/revoke", {}, world.keys["admin"], count


@pytest.mark.parametrize("kind", KINDS)
async def test_a_retry_after_a_lost_answer_makes_nothing_twice(
    world: Any, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    path, body, headers, count = await _case(world, kind)
    before = count()
    real_complete = IdempotencyStore.complete
    armed = {"now": True}

    def complete(self: IdempotencyStore, **kwargs: Any) -> None:
        if armed["now"]:
            armed["now"] = False
            raise DiedError("killed after the effect committed, before the answer was stored")
        real_complete(self, **kwargs)

    monkeypatch.setattr(api_idempotency.IdempotencyStore, "complete", complete)
    first_app = create_platform_app(
        world.platform, request_hash_key=b"k" * 32, chain_log=world.chain_log
    )
    keyed = headers | {"Idempotency-Key": f"lost-{kind}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=first_app), base_url="http://first.test"
    ) as first:
        with pytest.raises(DiedError):
            await first.post(path, json=body, headers=keyed)
    assert count() == before + 1
    sent_before = len(world.notifier.messages)
    world.clock.advance(IDEMPOTENCY_LEASE_SECONDS + 1)
    retry = await world.client.post(path, json=body, headers=keyed)
    assert retry.status_code in (200, 201), retry.text
    assert count() == before + 1, "the retry made it a second time"
    if kind == "bind_start":
        # The first try may have died before texting the code: the retry sends a fresh one,
        # and that code (not the first) confirms the binding the first try started.
        binding_id = retry.json()["binding_id"]
        assert len(world.notifier.messages) == sent_before + 1
        otp = world.notifier.last_code("card_binding", str(binding_id))
        confirmed = await world.client.post(
            f"/v1/cards/bindings/{binding_id}/confirm", json={"otp": otp}, headers=headers
        )
        assert confirmed.status_code == 201, confirmed.text


async def test_a_retried_onboarding_signs_one_merchant_and_one_live_key(world: Any) -> None:
    """The onboarding answer holds the merchant's API key, so it is never stored: every retry
    reaches the route. It signs no second merchant; its new key replaces the first answer's."""
    body = {"legal_name": "Once Co., Ltd.", "display_name": "Once", "city": "Beijing",
            "mcc": "5411", "scene": "supermarket"}  # fmt: skip
    headers = world.keys["UMS"] | {"Idempotency-Key": "onboard-once"}
    first = await world.client.post("/v1/acquirer/merchants", json=body, headers=headers)
    again = await world.client.post("/v1/acquirer/merchants", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert first.json()["id"] == again.json()["id"]
    with world.platform.engine.connect() as connection:
        signed = connection.execute(
            sa.select(sa.func.count())
            .select_from(merchants)
            .where(merchants.c.legal_name == "Once Co., Ltd.")
        ).scalar_one()
    assert signed == 1
    old = {"X-Api-Key": first.json()["api_key"]}
    new = {"X-Api-Key": again.json()["api_key"]}
    assert (await world.client.get("/v1/merchant", headers=old)).status_code == 401
    assert (await world.client.get("/v1/merchant", headers=new)).status_code == 200
