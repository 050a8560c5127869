"""The pages' cookie sessions and ``/web`` reads, in process, on SQLite and PostgreSQL.

The kernel reads the ``fp_session`` cookie only when no credential header is sent; a request that
changes something must echo ``fp_csrf`` in ``X-CSRF-Token``; logging out ends the session.
"""

from __future__ import annotations

import pytest
from world import PASSWORD, code_of

pytestmark = pytest.mark.anyio


async def test_a_wallet_cookie_session_with_its_csrf_token(world):
    person, card_id = await world.member_with_card()
    client = world.client
    page = await client.get("/wallet")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    csrf = client.cookies["fp_csrf"]

    refused = await client.post("/web/session", json={"phone": person.phone, "password": PASSWORD})
    assert (refused.status_code, code_of(refused)) == (403, "csrf_token_invalid")
    opened = await client.post(
        "/web/session",
        json={"phone": person.phone, "password": PASSWORD},
        headers={"X-CSRF-Token": csrf},
    )
    assert opened.status_code == 201, opened.text
    assert "token" not in opened.json()
    cookie = opened.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()

    me = await client.get("/v1/me")
    assert (me.status_code, me.json()["id"]) == (200, person.user_id)
    forged = await client.post(f"/v1/cards/{card_id}/payment-code")
    assert (forged.status_code, code_of(forged)) == (403, "csrf_token_invalid")
    code = await client.post(f"/v1/cards/{card_id}/payment-code", headers={"X-CSRF-Token": csrf})
    assert code.status_code == 201, code.text
    svg = await client.post(
        "/web/api/render", json={"text": code.json()["numeric"], "barcode": True},
        headers={"X-CSRF-Token": csrf},
    )  # fmt: skip
    assert (svg.status_code, svg.headers["content-type"]) == (200, "image/svg+xml")
    # A header still wins over the cookie: an API client is never a page.
    other, _ = await world.member_with_card("Wang Fang")
    assert (await client.get("/v1/me", headers=other.headers)).json()["id"] == other.user_id

    closed = await client.post("/web/logout", headers={"X-CSRF-Token": csrf})
    assert closed.status_code == 204
    client.cookies.set("fp_session", opened.cookies["fp_session"])  # replay the old cookie
    gone = await client.get("/v1/me")
    assert (gone.status_code, code_of(gone)) == (401, "invalid_credentials")
    client.cookies.delete("fp_session")


async def test_the_scan_preview_and_the_console(world):
    person, _card_id = await world.member_with_card()
    shop = await world.merchant()
    order = await world.order(shop, "23.50", "B-1")
    preview = await world.client.post(
        "/web/api/scan", json={"payload": order["payload"]}, headers=person.headers
    )
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert (body["merchant_id"], body["merchant"], body["amount"], body["dynamic"]) == (
        shop["id"], "Wumart", "23.50", True,
    )  # fmt: skip
    junk = await world.client.post(
        "/web/api/scan", json={"payload": "hello"}, headers=person.headers
    )
    assert (junk.status_code, code_of(junk)) == (422, "invalid_code")
    anonymous = await world.client.post("/web/api/scan", json={"payload": order["payload"]})
    assert anonymous.status_code == 401

    paid = await world.pay(person, order["payload"], _card_id)
    assert paid.status_code == 201, paid.text
    declined = await world.pay(person, order["payload"], _card_id)  # the order is paid already
    assert declined.status_code in (201, 409)
    world.publish_checkpoint()
    console = await world.client.get("/web/api/console", headers=world.keys["admin"])
    assert console.status_code == 200, console.text
    c = console.json()
    assert c["payments"] >= 1
    assert sum(c["per_second"]) == c["payments"]
    assert {p["code"] for p in c["positions"]} >= {"BOC", "UMS", "CUP"}
    assert c["checkpoints"][0]["tree_size"] == c["log_size"]
    assert c["checkpoints"][0]["final"] is True
    forbidden = await world.client.get("/web/api/console", headers=world.keys["BOC"])
    assert forbidden.status_code == 403


async def test_the_otp_note_is_shown_by_a_development_server_only(world, monkeypatch):
    monkeypatch.setenv("FLASHPAY_ENV", "development")
    assert "/dev/messages" in (await world.client.get("/wallet")).text
    monkeypatch.setenv("FLASHPAY_ENV", "production")
    production = await world.client.get("/wallet")
    assert production.status_code == 200
    assert "/dev/messages" not in production.text
